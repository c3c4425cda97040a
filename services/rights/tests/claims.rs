//! The task queue's claim, against the service's own database: replicas claiming at once
//! never take the same task and lose none; a live lease is left alone and a lapsed one is
//! taken over as a new attempt.

mod support;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use pdm_rights::store::{
    Store, TaskEnd, TaskStatus,
    entities::{request, task},
};
use pdm_runtime::sea_orm::{ConnectionTrait as _, DbBackend, Statement, TransactionTrait as _};

const REQUESTS: usize = 40;
const SERVICES: [&str; 3] = ["identity", "consent", "telemetry"];

fn pending_request(id: &str, now: chrono::DateTime<Utc>) -> (request::Model, Vec<task::Model>) {
    let tasks = SERVICES
        .iter()
        .map(|service| support::task_row(id, service, "erase", TaskStatus::Pending, now))
        .collect();
    (support::request_row(id, "ERASURE", Vec::new(), now), tasks)
}

#[tokio::test]
async fn replicas_claiming_at_once_take_every_task_once_and_a_lapsed_lease_is_taken_over()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    // The service's worker stays out of it: only the claimers below take tasks.
    mesh.stop("rights").await?;
    let now = Utc::now();
    let seeding = Store::connect(mesh.settings()).await?;
    for i in 0..REQUESTS {
        let (row, tasks) = pending_request(&format!("claims-{i:03}"), now);
        seeding.insert_request(row, tasks, None, None).await?;
    }
    // Two replicas (a pool each), two claim loops on each, small claims.
    let mut claimers = tokio::task::JoinSet::new();
    for replica in ["replica-a", "replica-b"] {
        let store = Store::connect(mesh.settings()).await?;
        for _ in 0..2 {
            let store = store.clone();
            claimers.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_due(now, 7, Duration::minutes(5), replica)
                        .await?;
                    if claimed.is_empty() {
                        return anyhow::Ok(mine);
                    }
                    mine.extend(claimed.into_iter().map(|t| (replica, t)));
                }
            });
        }
    }
    let mut claims: HashMap<(String, String), Vec<&str>> = HashMap::new();
    while let Some(done) = claimers.join_next().await {
        for (replica, t) in done?? {
            assert_eq!(t.status, TaskStatus::Running);
            assert_eq!(t.attempts, 1);
            assert_eq!(t.lease_owner.as_deref(), Some(replica));
            claims
                .entry((t.request_id, t.service))
                .or_default()
                .push(replica);
        }
    }
    assert_eq!(
        claims.len(),
        REQUESTS * SERVICES.len(),
        "every task claimed"
    );
    for (task, by) in &claims {
        assert_eq!(by.len(), 1, "{task:?} claimed by {by:?}");
    }
    // What the claims returned is what is stored.
    let stored = seeding.tasks_of("claims-000").await?;
    for t in &stored {
        let by = &claims[&(t.request_id.clone(), t.service.clone())];
        assert_eq!(t.status, TaskStatus::Running);
        assert_eq!(t.lease_owner.as_deref(), Some(by[0]));
    }
    // Leases still live: nothing to take. Once they lapse, all are taken over, attempt 2.
    let later = seeding
        .claim_due(now + Duration::minutes(4), 1000, Duration::minutes(5), "c")
        .await?;
    assert!(later.is_empty(), "{later:?}");
    let taken = seeding
        .claim_due(now + Duration::minutes(6), 1000, Duration::minutes(5), "c")
        .await?;
    assert_eq!(taken.len(), REQUESTS * SERVICES.len());
    assert!(
        taken
            .iter()
            .all(|t| t.attempts == 2 && t.lease_owner.as_deref() == Some("c"))
    );
    Ok(())
}

/// Issue 19: a claim reads the queue in the order of its indexes (`tasks_to_run`,
/// `tasks_leased`), and takes the rows it chose by key, not by reading the table. Selected
/// with one OR, every claim sorted the whole queue (103 ms a claim at 100,000 waiting
/// tasks); the plan shows which it does.
#[tokio::test]
async fn a_claim_reads_the_due_queue_in_the_order_of_its_index() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    mesh.stop("rights").await?;
    let store = Store::connect(mesh.settings()).await?;
    let claim = store.claim_statement(Utc::now(), 32, Duration::minutes(5), "planner");
    let db = store.db();
    let backend = db.get_database_backend();
    let values = claim.values.clone().map(|v| v.0).unwrap_or_default();
    let plan = match backend {
        DbBackend::Sqlite => {
            let explain = Statement::from_sql_and_values(
                backend,
                format!("EXPLAIN QUERY PLAN {}", claim.sql),
                values,
            );
            db.query_all_raw(explain)
                .await?
                .iter()
                .map(|row| row.try_get::<String>("", "detail"))
                .collect::<Result<Vec<_>, _>>()?
                .join("\n")
        }
        _ => {
            // An empty table is cheapest read whole: ask for the plan an index allows.
            let txn = db.begin().await?;
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await?;
            txn.execute_unprepared("SET LOCAL enable_bitmapscan = off")
                .await?;
            let explain =
                Statement::from_sql_and_values(backend, format!("EXPLAIN {}", claim.sql), values);
            let lines = txn
                .query_all_raw(explain)
                .await?
                .iter()
                .map(|row| row.try_get::<String>("", "QUERY PLAN"))
                .collect::<Result<Vec<_>, _>>()?
                .join("\n");
            txn.rollback().await?;
            lines
        }
    };
    for index in ["tasks_to_run", "tasks_leased"] {
        assert!(plan.contains(index), "no {index} in:\n{plan}");
    }
    if backend == DbBackend::Sqlite {
        assert!(!plan.contains("TEMP B-TREE"), "a sort in:\n{plan}");
        assert!(
            !plan.lines().any(|line| line == "SCAN tasks"),
            "the table read whole in:\n{plan}"
        );
    }
    Ok(())
}

/// A claim takes the lapsed leases before the tasks waiting, and no more than it asks for.
#[tokio::test]
async fn a_claim_takes_lapsed_leases_first_and_no_more_than_its_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    mesh.stop("rights").await?;
    let now = Utc::now();
    let store = Store::connect(mesh.settings()).await?;
    for i in 0..3 {
        let (row, tasks) = pending_request(&format!("lapsed-{i}"), now);
        store.insert_request(row, tasks, None, None).await?;
    }
    let first = store
        .claim_due(now, 3, Duration::minutes(1), "replica-a")
        .await?;
    assert_eq!(first.len(), 3, "{first:#?}");
    let later = store
        .claim_due(
            now + Duration::minutes(2),
            4,
            Duration::minutes(5),
            "replica-b",
        )
        .await?;
    assert_eq!(later.len(), 4, "{later:?}");
    let retried: Vec<_> = later.iter().filter(|t| t.attempts == 2).collect();
    assert_eq!(retried.len(), 3, "the lapsed three first: {later:?}");
    for t in &first {
        assert!(
            retried
                .iter()
                .any(|r| (&r.request_id, &r.service) == (&t.request_id, &t.service))
        );
    }
    assert!(
        later
            .iter()
            .all(|t| t.lease_owner.as_deref() == Some("replica-b"))
    );
    Ok(())
}

/// Issue 19: a worker's task ends are written together, one statement for a batch, and
/// each only while its task is still under the claim that ran it: an end from a run whose
/// lease another replica took over is not stored (its result is the other's to give).
#[tokio::test]
async fn task_ends_are_written_together_and_only_under_the_claim_that_ran_them()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    mesh.stop("rights").await?;
    // Whole seconds: both databases give back exactly what was written.
    let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("a time");
    let store = Store::connect(mesh.settings()).await?;
    for id in ["ends-1", "ends-2"] {
        let (row, tasks) = pending_request(id, now);
        store.insert_request(row, tasks, None, None).await?;
    }
    let short = store
        .claim_due(now, 3, Duration::minutes(1), "replica-a")
        .await?;
    let long = store
        .claim_due(now, 3, Duration::minutes(10), "replica-a")
        .await?;
    assert!(short.iter().all(|t| t.request_id == "ends-1"), "{short:?}");
    assert!(long.iter().all(|t| t.request_id == "ends-2"), "{long:?}");
    let taken_over = store
        .claim_due(
            now + Duration::minutes(2),
            3,
            Duration::minutes(5),
            "replica-b",
        )
        .await?;
    assert_eq!(taken_over.len(), 3);

    let end = |t: &task::Model, status, result: Option<&str>, error: Option<&str>, due| TaskEnd {
        task: t.clone(),
        status,
        result: result.map(str::to_owned),
        error: error.map(str::to_owned),
        next_attempt_at: due,
    };
    let retry_at = now + Duration::minutes(30);
    let by_service = |tasks: &[task::Model], service: &str| {
        tasks
            .iter()
            .find(|t| t.service == service)
            .cloned()
            .expect("a task of each service")
    };
    let mut ends: Vec<TaskEnd> = short
        .iter()
        .map(|t| end(t, TaskStatus::Done, Some("late"), None, now))
        .collect();
    ends.push(end(
        &by_service(&long, "identity"),
        TaskStatus::Done,
        Some("{\"rows\":1}"),
        None,
        now,
    ));
    ends.push(end(
        &by_service(&long, "consent"),
        TaskStatus::Rejected,
        None,
        Some("refused"),
        now,
    ));
    ends.push(end(
        &by_service(&long, "telemetry"),
        TaskStatus::Failed,
        None,
        Some("unavailable"),
        retry_at,
    ));
    let at = now + Duration::minutes(3);
    let stored = store.finish_tasks(&ends, at).await?;
    assert_eq!(stored, [false, false, false, true, true, true]);

    let rows: HashMap<(String, String), task::Model> = [
        store.tasks_of("ends-1").await?,
        store.tasks_of("ends-2").await?,
    ]
    .into_iter()
    .flatten()
    .map(|t| ((t.request_id.clone(), t.service.clone()), t))
    .collect();
    let row = |request: &str, service: &str| &rows[&(request.to_owned(), service.to_owned())];
    for service in SERVICES {
        let t = row("ends-1", service);
        assert_eq!(t.status, TaskStatus::Running, "replica-b's to end: {t:?}");
        assert_eq!(t.result, None);
    }
    let done = row("ends-2", "identity");
    assert_eq!(
        (
            done.status,
            done.result.as_deref(),
            done.done_at,
            done.lease_until
        ),
        (TaskStatus::Done, Some("{\"rows\":1}"), Some(at), None)
    );
    let refused = row("ends-2", "consent");
    assert_eq!(
        (
            refused.status,
            refused.last_error.as_deref(),
            refused.done_at
        ),
        (TaskStatus::Rejected, Some("refused"), Some(at))
    );
    let failed = row("ends-2", "telemetry");
    assert_eq!(
        (
            failed.status,
            failed.last_error.as_deref(),
            failed.next_attempt_at,
            failed.done_at,
            failed.lease_until
        ),
        (
            TaskStatus::Failed,
            Some("unavailable"),
            retry_at,
            None,
            None
        )
    );
    assert_eq!(failed.updated_at, at);
    let open = store.with_unfinished_tasks(["ends-1", "ends-2"]).await?;
    assert_eq!(open.len(), 2, "{open:?}");

    // replica-b's ends are stored; its request then has nothing left to run.
    let theirs: Vec<TaskEnd> = taken_over
        .iter()
        .map(|t| end(t, TaskStatus::Done, Some("{}"), None, at))
        .collect();
    assert_eq!(store.finish_tasks(&theirs, at).await?, [true, true, true]);
    let open = store.with_unfinished_tasks(["ends-1", "ends-2"]).await?;
    assert_eq!(
        open.into_iter().collect::<Vec<_>>(),
        ["ends-2"],
        "ends-1 is finished; ends-2 waits for its retry"
    );
    assert!(store.finish_tasks(&[], at).await?.is_empty());
    Ok(())
}
