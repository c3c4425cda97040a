//! The durable fan-out: a request is stored as one task per service before any call, so
//! stopping the rights service at any moment and starting it again finishes the request
//! with nothing lost or done twice; a service that is down keeps the request in progress
//! until it returns; a child's request goes first ("Our policy towards the Children").

mod support;

use std::time::Duration;

use pdm_proto::{
    rights::v1::{self as pb, Regime, RequestKind, Status},
    subject::v1::EraseSubjectRequest,
};
use pdm_rights::store::{Store, TaskStatus, entities::task};
use pdm_testkit::{Mesh, assert::rows_where, fake::Person};
use support::{
    DATA_SERVICES, builder, eventually, password, person_with_data, submit, task, wait_closed,
    wait_for,
};

fn erasure(subject: &str, person: &Person) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        kind: RequestKind::Erasure as i32,
        regime: Regime::Gdpr as i32,
        subject_id: subject.to_owned(),
        credential: password(person),
        ..Default::default()
    }
}

/// A mesh whose failing tasks are retried at least every second.
async fn mesh(outbox: &std::path::Path, parallelism: usize) -> anyhow::Result<Mesh> {
    builder(outbox)
        .setting("rights.max_backoff_secs", 1)
        .setting("rights.parallelism", parallelism)
        .start()
        .await
}

/// Checks that every service erased the subject exactly once for the request: one row in
/// its own receipts table, and the receipt it gives for the request id again (erasure is
/// idempotent per request id) is the one GetRequest shows.
async fn erased_exactly_once(mesh: &Mesh, done: &pb::DataSubjectRequest) -> anyhow::Result<()> {
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    assert_eq!(done.tasks.len(), DATA_SERVICES.len(), "{done:?}");
    for service in DATA_SERVICES {
        let db = mesh.connect_db(service).await?;
        assert_eq!(
            rows_where(&db, "erasures", "request_id", &done.request_id).await,
            1,
            "{service} erased once"
        );
        let t = task(done, service);
        assert_eq!((t.action.as_str(), t.status.as_str()), ("erase", "done"));
        let shown = t.receipt.clone().expect("receipt");
        assert_eq!(shown.request_id, done.request_id);
        assert_eq!(shown.service, service);
        let stored = mesh
            .subject_data(service)
            .erase_subject(EraseSubjectRequest {
                request_id: done.request_id.clone(),
                subject_id: done.subject_id.clone(),
            })
            .await?
            .into_inner()
            .receipt
            .expect("receipt");
        assert_eq!(stored, shown, "{service}: the receipt of the first erasure");
        assert_eq!(
            rows_where(&db, "erasures", "request_id", &done.request_id).await,
            1,
            "{service} still erased once"
        );
    }
    Ok(())
}

/// Telemetry's receipt says the subject's events are gone (their key destroyed).
fn telemetry_erased(r: &pb::DataSubjectRequest) -> bool {
    task(r, "telemetry")
        .receipt
        .as_ref()
        .is_some_and(|receipt| receipt.key_destroyed)
}

#[tokio::test]
async fn a_service_down_keeps_the_request_in_progress_until_it_returns() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = mesh(&dir.path().join("outbox.jsonl"), 8).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    mesh.stop("telemetry").await?;

    let submitted = submit(&mesh, erasure(&subject, &person)).await?;
    let stuck = wait_for(&mesh, &submitted.request_id, "telemetry retried", |r| {
        let t = task(r, "telemetry");
        t.status == "failed" && t.attempts > 1
    })
    .await?;
    assert_eq!(stuck.status, Status::InProgress as i32, "{stuck:?}");
    assert!(stuck.closed_at.is_none());
    let failing = task(&stuck, "telemetry");
    assert!(!failing.last_error.is_empty(), "{failing:?}");
    assert!(failing.receipt.is_none() && failing.done_at.is_none());
    for service in ["consent", "identity", "transfers"] {
        let t = task(&stuck, service);
        assert_eq!(t.status, "done", "{t:?}");
        assert!(t.receipt.is_some() && t.done_at.is_some(), "{t:?}");
    }
    // Still failing a moment later: the request waits, it does not give up.
    let later = wait_for(&mesh, &submitted.request_id, "more attempts", |r| {
        task(r, "telemetry").attempts > failing.attempts
    })
    .await?;
    assert_eq!(later.status, Status::InProgress as i32);

    mesh.restart("telemetry").await?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    erased_exactly_once(&mesh, &done).await?;
    assert!(telemetry_erased(&done), "{done:?}");
    assert!(task(&done, "telemetry").last_error.is_empty(), "{done:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn stopping_the_rights_service_mid_fan_out_loses_nothing_and_repeats_nothing()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = mesh(&dir.path().join("outbox.jsonl"), 8).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    // Telemetry is down, so its task keeps failing while the others finish.
    mesh.stop("telemetry").await?;
    let submitted = submit(&mesh, erasure(&subject, &person)).await?;
    let midway = wait_for(&mesh, &submitted.request_id, "half done", |r| {
        r.tasks
            .iter()
            .all(|t| t.status == "done" || (t.service == "telemetry" && t.status == "failed"))
    })
    .await?;
    assert_eq!(midway.status, Status::InProgress as i32);

    mesh.stop("rights").await?;
    mesh.restart("telemetry").await?;
    mesh.restart("rights").await?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    erased_exactly_once(&mesh, &done).await?;
    assert!(telemetry_erased(&done), "{done:?}");
    assert!(task(&done, "telemetry").attempts > 1);
    for service in ["consent", "identity", "transfers"] {
        assert_eq!(task(&done, service).attempts, 1, "{service} called once");
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn stopping_the_rights_service_as_requests_arrive_loses_nothing_and_repeats_nothing()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = mesh(&dir.path().join("outbox.jsonl"), 8).await?;
    let mut people = Vec::new();
    for _ in 0..3 {
        people.push(person_with_data(&mesh).await?);
    }
    // Submitted together, and the service stopped the moment they are stored: their
    // tasks are pending or in flight.
    let mut submitted = Vec::new();
    for (person, subject) in &people {
        submitted.push(submit(&mesh, erasure(subject, person)).await?);
    }
    mesh.stop("rights").await?;
    mesh.restart("rights").await?;
    // And once more while they finish.
    mesh.stop("rights").await?;
    mesh.restart("rights").await?;
    for r in &submitted {
        let done = wait_closed(&mesh, &r.request_id).await?;
        erased_exactly_once(&mesh, &done).await?;
        assert!(telemetry_erased(&done), "{done:?}");
        for t in &done.tasks {
            assert_eq!(t.attempts, 1, "every service called once: {t:?}");
        }
    }
    for (person, _) in &people {
        mesh.logs().assert_clean(&person.secrets());
    }
    Ok(())
}

/// The rights service's tasks of a request, straight from its database.
async fn stored_tasks(store: &Store, request_id: &str) -> anyhow::Result<Vec<task::Model>> {
    Ok(store.tasks_of(request_id).await?)
}

async fn telemetry_task(store: &Store, request_id: &str) -> anyhow::Result<task::Model> {
    stored_tasks(store, request_id)
        .await?
        .into_iter()
        .find(|t| t.service == "telemetry")
        .ok_or_else(|| anyhow::anyhow!("no telemetry task"))
}

#[tokio::test]
async fn a_childs_erasure_is_served_before_older_ones_when_the_service_returns()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // One task at a time, so the order is the worker's choice.
    let mut mesh = mesh(&dir.path().join("outbox.jsonl"), 1).await?;
    let mut people = Vec::new();
    for _ in 0..3 {
        people.push(person_with_data(&mesh).await?);
    }
    let store = Store::connect(mesh.settings()).await?;
    mesh.stop("telemetry").await?;
    let mut ordinary = Vec::new();
    for (person, subject) in &people[..2] {
        let r = submit(&mesh, erasure(subject, person)).await?;
        wait_for(&mesh, &r.request_id, "telemetry failed", |r| {
            task(r, "telemetry").status == "failed"
        })
        .await?;
        ordinary.push(r);
    }
    let (child_person, child_subject) = &people[2];
    let child = submit(
        &mesh,
        pb::SubmitRequestRequest {
            concerns_child: true,
            notes: "the account holder is 14".into(),
            ..erasure(child_subject, child_person)
        },
    )
    .await?;
    assert!(child.concerns_child);

    // Stop the rights service at a moment when an older request's telemetry task is due
    // before the child's, so retry order alone would not serve the child first.
    let mut stopped = false;
    for _ in 0..20 {
        wait_for(&mesh, &child.request_id, "telemetry failed", |r| {
            task(r, "telemetry").status == "failed"
        })
        .await?;
        let _ = eventually(
            "an older task due first",
            Duration::from_secs(5),
            || async {
                let c = telemetry_task(&store, &child.request_id).await?;
                let a = telemetry_task(&store, &ordinary[0].request_id).await?;
                let b = telemetry_task(&store, &ordinary[1].request_id).await?;
                Ok((a.next_attempt_at.min(b.next_attempt_at) < c.next_attempt_at).then_some(()))
            },
        )
        .await;
        mesh.stop("rights").await?;
        // No runner left behind: every task rests, and the order still holds.
        let tasks = eventually("tasks at rest", Duration::from_secs(10), || async {
            let tasks = [
                telemetry_task(&store, &child.request_id).await?,
                telemetry_task(&store, &ordinary[0].request_id).await?,
                telemetry_task(&store, &ordinary[1].request_id).await?,
            ];
            Ok(tasks
                .iter()
                .all(|t| t.status == TaskStatus::Failed)
                .then_some(tasks))
        })
        .await?;
        let [c, a, b] = tasks;
        if a.next_attempt_at.min(b.next_attempt_at) < c.next_attempt_at {
            stopped = true;
            break;
        }
        mesh.restart("rights").await?;
    }
    assert!(stopped, "never saw an older task due before the child's");
    // Everything is due by the time the services are back.
    eventually("every retry due", Duration::from_secs(5), || async {
        let c = telemetry_task(&store, &child.request_id).await?;
        let a = telemetry_task(&store, &ordinary[0].request_id).await?;
        let b = telemetry_task(&store, &ordinary[1].request_id).await?;
        let latest = c
            .next_attempt_at
            .max(a.next_attempt_at)
            .max(b.next_attempt_at);
        Ok((latest < chrono::Utc::now()).then_some(()))
    })
    .await?;
    mesh.restart("telemetry").await?;
    mesh.restart("rights").await?;

    let child_done = wait_closed(&mesh, &child.request_id).await?;
    erased_exactly_once(&mesh, &child_done).await?;
    let child_closed = child_done.closed_at.expect("closed");
    let child_telemetry = task(&child_done, "telemetry").done_at.expect("done");
    for r in &ordinary {
        let done = wait_closed(&mesh, &r.request_id).await?;
        erased_exactly_once(&mesh, &done).await?;
        let closed = done.closed_at.expect("closed");
        let telemetry = task(&done, "telemetry").done_at.expect("done");
        assert!(
            (child_closed.seconds, child_closed.nanos) < (closed.seconds, closed.nanos),
            "the child's request closed first: {child_done:?} {done:?}"
        );
        assert!(
            (child_telemetry.seconds, child_telemetry.nanos) < (telemetry.seconds, telemetry.nanos),
            "the child's task ran first"
        );
    }
    for (person, _) in &people {
        mesh.logs().assert_clean(&person.secrets());
    }
    Ok(())
}

/// A stop between the last task and the close leaves a request in progress with nothing
/// left to do: the next start closes it (found by the black-box suite's SIGKILLs).
#[tokio::test]
async fn a_request_whose_tasks_all_finished_is_closed_at_the_next_start() -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let dir = tempfile::tempdir()?;
    let mut mesh = mesh(&dir.path().join("outbox.jsonl"), 4).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let request = submit(&mesh, erasure(&subject, &person)).await?;
    let done = wait_closed(&mesh, &request.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32);

    // As if the process had died just before closing it.
    mesh.stop("rights").await?;
    let db = mesh.connect_db("rights").await?;
    db.execute_unprepared(&format!(
        "UPDATE requests SET status = 'STATUS_IN_PROGRESS', closed_at = NULL \
         WHERE request_id = '{}'",
        request.request_id
    ))
    .await?;
    mesh.restart("rights").await?;
    let closed = wait_closed(&mesh, &request.request_id).await?;
    assert_eq!(closed.status, Status::Completed as i32, "{closed:?}");
    Ok(())
}

#[tokio::test]
async fn two_replicas_share_the_queue_and_run_every_task_exactly_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl"), 2).await?;
    let replica = mesh.start_replica("rights").await?;
    let other = pb::rights_service_client::RightsServiceClient::new(replica.channel());
    let mut people = Vec::new();
    for _ in 0..6 {
        people.push(person_with_data(&mesh).await?);
    }
    // Submitted to either replica in turn, so both workers are woken with work to claim.
    let mut submitted = Vec::new();
    for (i, (person, subject)) in people.iter().enumerate() {
        let request = erasure(subject, person);
        let stored = if i % 2 == 0 {
            submit(&mesh, request).await?
        } else {
            other
                .clone()
                .submit_request(request)
                .await?
                .into_inner()
                .request
                .expect("request")
        };
        submitted.push(stored);
    }
    let store = Store::connect(mesh.settings()).await?;
    let mut owners = std::collections::BTreeSet::new();
    for r in &submitted {
        let done = wait_closed(&mesh, &r.request_id).await?;
        erased_exactly_once(&mesh, &done).await?;
        for t in stored_tasks(&store, &r.request_id).await? {
            // One claim per task: no replica ever took a task another was running.
            assert_eq!(t.attempts, 1, "claimed once: {t:?}");
            owners.insert(
                t.lease_owner
                    .clone()
                    .expect("claimed under a replica's name"),
            );
        }
    }
    assert_eq!(owners.len(), 2, "both replicas ran tasks: {owners:?}");
    replica.stop().await?;
    for (person, _) in &people {
        mesh.logs().assert_clean(&person.secrets());
    }
    Ok(())
}
