//! One purge run at a time across replicas: the lease in the database. A second run
//! while one is in progress answers ABORTED and purges nothing; a lease left by a replica
//! that died expires, and the run it left half done is recovered as partial and retried;
//! a run that lasts longer than the lease renews it, so no second run starts beside it.

mod support;

use chrono::Duration;
use pdm_proto::retention::v1::{ListPurgeRunsRequest, RunStatus};
use pdm_retention::store::{
    INTERRUPTED, Store,
    entities::{purge_lease, purge_run},
};
use pdm_runtime::{Clock, ManualClock};
use pdm_testkit::{GatedServer, start_time};
use sea_orm::EntityTrait;
use support::{WAIT, count, mesh, retry_purge, run_purge, service, set, sign_in, status};
use tonic::Code;

#[tokio::test]
async fn two_concurrent_runs_do_not_both_purge() -> anyhow::Result<()> {
    let gated = GatedServer::start().await?;
    let mut settings = gated.settings("archive");
    settings.push(set("retention.services", "identity,archive"));
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, settings).await?;
    let ada = pdm_testkit::fake::Person::new();
    mesh.sign_up(&ada).await?;
    sign_in(&mesh, &ada).await?;
    clock.advance(Duration::days(60));

    // The first run holds the lease while the archive service keeps it waiting.
    let mut first_client = mesh.retention();
    let first = tokio::spawn(async move { run_purge(&mut first_client, false).await });
    gated.gate.wait_for_calls(1, WAIT).await?;

    let mut retention = mesh.retention();
    for dry_run in [false, true] {
        // Without the lease the second run would wait at the gate too: bounded.
        let err = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_purge(&mut retention, dry_run),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the second run was not refused"))?
        .expect_err("a second run while one is in progress");
        assert_eq!(err.code(), Code::Aborted, "{err:?}");
    }
    let runs = retention
        .list_purge_runs(ListPurgeRunsRequest::default())
        .await?
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 1, "the refused runs left no trace");
    assert_eq!(status(&runs[0]), RunStatus::Running);

    gated.gate.open();
    let (_, run) = first.await??;
    assert_eq!(status(&run), RunStatus::Completed);
    assert_eq!(
        count(&run, "identity", "account.session"),
        (1, 0, Vec::new())
    );
    assert_eq!(gated.gate.calls(), 1, "only one run reached the services");

    // The lease is free again.
    let (_, next) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&next), RunStatus::Completed);
    assert_eq!(
        count(&next, "identity", "account.session"),
        (0, 0, Vec::new())
    );

    mesh.logs().assert_clean(&ada.secrets());
    Ok(())
}

#[tokio::test]
async fn a_lease_left_by_a_dead_replica_expires_and_its_run_is_recovered() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, vec![set("retention.services", "identity")]).await?;
    let mut retention = mesh.retention();

    // Another replica started a run, took the lease for 15 minutes and died.
    let other = Store::new(mesh.connect_db("retention").await?);
    let now = clock.now();
    let dead_run = uuid::Uuid::now_v7().to_string();
    assert!(
        other
            .acquire_lease("replica-b/run", &dead_run, now, now + Duration::minutes(15))
            .await?
    );
    other
        .create_run(
            purge_run::Model {
                run_id: dead_run.clone(),
                dry_run: false,
                status: RunStatus::Running.as_str_name().to_owned(),
                as_of: now,
                started_at: now,
                finished_at: None,
                triggered_by: "schedule".into(),
                rules: "[]".into(),
                hold_ids: "[]".into(),
            },
            &["identity".to_owned()],
        )
        .await?;

    let err = run_purge(&mut retention, false)
        .await
        .expect_err("the lease is held");
    assert_eq!(err.code(), Code::Aborted);
    clock.advance(Duration::minutes(14));
    let err = retry_purge(&mut retention, &dead_run)
        .await
        .expect_err("still held");
    assert_eq!(err.code(), Code::Aborted);

    // Expired: the next run goes ahead, and the dead replica's run is partial.
    clock.advance(Duration::minutes(2));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&run), RunStatus::Completed);
    let runs = retention
        .list_purge_runs(ListPurgeRunsRequest::default())
        .await?
        .into_inner()
        .runs;
    let dead = runs
        .iter()
        .find(|r| r.run_id == dead_run)
        .expect("the dead run");
    assert_eq!(status(dead), RunStatus::Partial);
    assert_eq!(service(dead, "identity").error, INTERRUPTED);
    assert_eq!(service(dead, "identity").attempts, 0);

    let (_, recovered) = retry_purge(&mut retention, &dead_run).await?;
    assert_eq!(status(&recovered), RunStatus::Completed);
    assert!(service(&recovered, "identity").ok);
    assert_eq!(service(&recovered, "identity").attempts, 1);
    // The lease was given back: the old holder cannot release it from the new one.
    other.release_lease("replica-b/run").await?;
    let (_, after) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&after), RunStatus::Completed);
    Ok(())
}

#[tokio::test]
async fn a_run_longer_than_its_lease_renews_it_and_no_second_run_starts() -> anyhow::Result<()> {
    let gated = GatedServer::start().await?;
    let mut settings = gated.settings("archive");
    settings.extend([
        set("retention.services", "archive"),
        // Renewed every 4 s; the held call gives up after 6 s, so the test has 2 s of slack.
        set("retention.lease_seconds", 12),
        set("retention.call_timeout_ms", 6000),
    ]);
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, settings).await?;
    let db = mesh.connect_db("retention").await?;

    let mut first_client = mesh.retention();
    let first = tokio::spawn(async move { run_purge(&mut first_client, false).await });
    gated.gate.wait_for_calls(1, WAIT).await?;

    // The run has now outlasted the lease it took; only a renewal keeps it.
    clock.advance(Duration::seconds(13));
    pdm_testkit::eventually("the lease renewed", WAIT, || async {
        let lease = purge_lease::Entity::find()
            .one(&db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no lease row"))?;
        Ok(lease.expires_at.is_some_and(|until| until > clock.now()))
    })
    .await?;
    let mut retention = mesh.retention();
    let err = run_purge(&mut retention, false)
        .await
        .expect_err("the renewed lease is held");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");

    gated.gate.open();
    let (_, run) = first.await??;
    assert_eq!(status(&run), RunStatus::Completed);
    assert_eq!(gated.gate.calls(), 1, "only one run reached the service");
    Ok(())
}
