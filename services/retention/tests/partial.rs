//! A service that does not answer makes the run partial, never silently skipped; a retry
//! (on demand, or by the scheduler once the retry delay has passed) asks it again and
//! completes the run.

mod support;

use chrono::Duration;
use pdm_proto::retention::v1::{GetPurgeRunRequest, ListPurgeRunsRequest, RunStatus};
use pdm_runtime::{Clock, ManualClock};
use pdm_testkit::{eventually_every, start_time};
use support::{
    POLL, WAIT, analytics_user, count, holdings, mesh, retry_purge, run_purge, service, set,
    sign_in, status, usage_event,
};

const EVENT: &str = "telemetry.event";

fn fourteen_months() -> chrono::Months {
    chrono::Months::new(14)
}

#[tokio::test]
async fn a_service_that_is_down_makes_the_run_partial_and_a_retry_completes_it()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mut mesh = mesh(&clock, Vec::new()).await?;
    let (ada, a) = analytics_user(&mesh).await?;
    sign_in(&mesh, &ada).await?;
    usage_event(&mesh, &a, clock.now()).await?;
    clock.set(start_time() + fourteen_months());
    let mut retention = mesh.retention();

    mesh.stop("telemetry").await?;
    let (messages, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        messages.len(),
        5,
        "every service is reported, the failed one too"
    );
    assert_eq!(status(&run), RunStatus::Partial);
    let telemetry = service(&run, "telemetry");
    assert!(!telemetry.ok);
    assert_eq!(telemetry.attempts, 1);
    assert!(telemetry.results.is_empty());
    assert!(
        telemetry.error.starts_with("Unavailable"),
        "{}",
        telemetry.error
    );
    assert!(!telemetry.error.contains(&ada.email));
    // The others did their part.
    assert_eq!(
        count(&run, "identity", "account.session"),
        (1, 0, Vec::new())
    );
    assert!(service(&run, "consent").ok && service(&run, "transfers").ok);
    assert_eq!(
        holdings(&mesh, &a).await?,
        [0, 0, 1],
        "the event is still there"
    );

    mesh.restart("telemetry").await?;
    let (messages, retried) = retry_purge(&mut retention, &run.run_id).await?;
    assert_eq!(messages.len(), 2, "only telemetry is asked again");
    assert_eq!((messages[0].done, messages[0].total), (1, 1));
    assert_eq!(retried.run_id, run.run_id);
    assert_eq!(status(&retried), RunStatus::Completed);
    assert_eq!(retried.as_of, run.as_of, "the run keeps its time");
    let telemetry = service(&retried, "telemetry");
    assert!(telemetry.ok && telemetry.error.is_empty());
    assert_eq!(telemetry.attempts, 2);
    assert_eq!(service(&retried, "identity").attempts, 1);
    assert_eq!(count(&retried, "telemetry", EVENT), (1, 0, Vec::new()));
    assert_eq!(holdings(&mesh, &a).await?, [0, 0, 0]);

    // A complete run has nothing to retry: it comes back as it is.
    let (messages, again) = retry_purge(&mut retention, &run.run_id).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].done, messages[0].total), (0, 0));
    assert_eq!(again, retried);
    assert_eq!(
        retention
            .get_purge_run(GetPurgeRunRequest {
                run_id: run.run_id.clone()
            })
            .await?
            .into_inner()
            .run,
        Some(retried)
    );

    mesh.logs().assert_clean(&ada.secrets());
    Ok(())
}

#[tokio::test]
async fn a_service_at_a_closed_port_is_reported_and_the_run_stays_partial() -> anyhow::Result<()> {
    // An address nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    let clock = ManualClock::new(start_time());
    let mesh = mesh(
        &clock,
        vec![
            set("services.archive.port", closed.port()),
            set("services.archive.endpoint", format!("http://{closed}")),
            set("services.archive.database_url", ""),
            set("retention.services", "identity,archive"),
        ],
    )
    .await?;
    let mut retention = mesh.retention();
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&run), RunStatus::Partial);
    assert!(service(&run, "identity").ok);
    assert!(!service(&run, "archive").ok);
    let (_, retried) = retry_purge(&mut retention, &run.run_id).await?;
    assert_eq!(status(&retried), RunStatus::Partial);
    assert_eq!(service(&retried, "archive").attempts, 2);
    assert_eq!(service(&retried, "identity").attempts, 1);
    Ok(())
}

#[tokio::test]
async fn the_scheduler_runs_when_due_and_retries_partial_runs_until_they_complete()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mut mesh = mesh(
        &clock,
        vec![
            set("retention.purge_interval_minutes", 60),
            set("retention.retry_minutes", 15),
            set("retention.scheduler_tick_ms", 10),
        ],
    )
    .await?;
    let retention = mesh.retention();
    let runs = |mut client: support::Client| async move {
        Ok::<_, anyhow::Error>(
            client
                .list_purge_runs(ListPurgeRunsRequest::default())
                .await?
                .into_inner()
                .runs,
        )
    };

    // Nothing ran yet: the first look runs at once (complete, or partial when it came
    // before the other services were ready).
    let first = eventually_every("the first scheduled run", WAIT, POLL, || {
        let client = retention.clone();
        async move {
            let runs = runs(client).await?;
            Ok(runs
                .first()
                .filter(|r| status(r) != RunStatus::Running)
                .cloned())
        }
    })
    .await?;
    assert_eq!(first.triggered_by, "schedule");

    let (ada, a) = analytics_user(&mesh).await?;
    usage_event(&mesh, &a, clock.now()).await?;
    mesh.stop("telemetry").await?;
    clock.set(start_time() + fourteen_months());

    // Due again; telemetry does not answer.
    let partial = eventually_every("a partial scheduled run", WAIT, POLL, || {
        let client = retention.clone();
        let first = first.run_id.clone();
        async move {
            let runs = runs(client).await?;
            Ok(runs
                .first()
                .filter(|r| r.run_id != first && status(r) == RunStatus::Partial)
                .cloned())
        }
    })
    .await?;
    assert_eq!(partial.triggered_by, "schedule");
    assert!(!service(&partial, "telemetry").ok);

    // Back, and the retry delay has passed: the same run is completed.
    mesh.restart("telemetry").await?;
    clock.advance(Duration::minutes(16));
    let completed = eventually_every("the retried run", WAIT, POLL, || {
        let mut client = retention.clone();
        let run_id = partial.run_id.clone();
        async move {
            let run = client
                .get_purge_run(GetPurgeRunRequest { run_id })
                .await?
                .into_inner()
                .run;
            Ok(run.filter(|r| status(r) == RunStatus::Completed))
        }
    })
    .await?;
    assert_eq!(service(&completed, "telemetry").attempts, 2);
    assert_eq!(count(&completed, "telemetry", EVENT), (1, 0, Vec::new()));
    assert_eq!(holdings(&mesh, &a).await?, [0, 0, 0]);
    assert_eq!(
        runs(retention.clone()).await?.len(),
        2,
        "a retry is not a new run"
    );

    mesh.logs().assert_clean(&ada.secrets());
    Ok(())
}
