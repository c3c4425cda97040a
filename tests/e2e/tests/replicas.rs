//! Replicas that agree: `pdm serve all` with a second process serving one of its
//! services (`pdm serve <service>`) on the same data directory and database.
//!
//! - rights: erasure requests submitted to a second rights replica, which is killed with
//!   `SIGKILL` in the middle of its tasks and never comes back: the main's worker takes
//!   the tasks over once their lease (`rights.task_lease_ms`) runs out, not before, and
//!   every request completes with each service's erasure done exactly once; rights'
//!   access trail, appended to by both processes, still verifies.
//! - retention: of two runs started on two replicas at once exactly one runs, the other is
//!   `ABORTED`; a run whose replica is killed holding the purge lease keeps every other run
//!   out until the lease expires, then the main runs and takes the killed run over.
//! - telemetry: a batch is stored once whichever replica receives it, retried on the other
//!   one, sent to both at once, or acknowledged by a replica killed right after.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pdm_e2e::{Caller, Suite, checks, grpc, people, stall::Stall, suite::random_below};
use serde_json::{Value, json};
use tonic::Code;

const ERASURES: usize = 16;
const TASK_LEASE_MS: u64 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rights_replicas_tasks_are_taken_over_after_their_lease_and_erased_once()
-> anyhow::Result<()> {
    let lease = TASK_LEASE_MS.to_string();
    let mut suite = Suite::start_with(&[("PDM__RIGHTS__TASK_LEASE_MS", &lease)]).await?;
    // The replica reaches telemetry through a proxy that holds its calls, so whenever it
    // is killed it is in the middle of tasks: at least its telemetry erasures.
    let stall = Stall::holding().await?;
    let telemetry = stall.endpoint();
    let mut replica = suite
        .pdm
        .start_replica(
            "rights",
            &[("PDM__SERVICES__TELEMETRY__ENDPOINT", &telemetry)],
        )
        .await?;
    let recipient = people::register_recipient(&suite).await?;
    let mut persons = Vec::new();
    for _ in 0..ERASURES {
        let person = people::person_with_data(&suite, &recipient).await?;
        suite.world.personal.extend(person.values.clone());
        persons.push(person);
    }
    let to_replica = replica.channel(Caller::Admin)?;
    let mut requests = Vec::new();
    for person in persons {
        let request =
            people::submit_to(&to_replica, "REQUEST_KIND_ERASURE", &person.subject).await?;
        requests.push((request, person));
    }
    let delay = random_below(400);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    replica.kill().await?;
    let killed = Instant::now();

    let replica_owner = format!(":{}", replica.port());
    let main_owner = format!(":{}", suite.pdm.port("rights")?);
    let left: Vec<Task> = tasks(&suite)
        .await?
        .into_iter()
        .filter(|t| t.status == "running" && t.owner.ends_with(&replica_owner))
        .collect();
    anyhow::ensure!(
        !left.is_empty(),
        "the replica was killed running no task (its telemetry calls were held): \
         nothing to take over"
    );

    // The takeover, watched from the tasks table.
    let mut first_taken = None;
    let taken_over = loop {
        let now = tasks(&suite).await?;
        let of = |t: &Task| now.iter().find(|n| n.key == t.key).cloned();
        if first_taken.is_none()
            && left
                .iter()
                .any(|t| of(t).is_some_and(|n| n.attempts > t.attempts))
        {
            first_taken = Some(killed.elapsed());
        }
        if left
            .iter()
            .all(|t| of(t).is_some_and(|n| n.status == "done"))
        {
            break killed.elapsed();
        }
        anyhow::ensure!(
            killed.elapsed() < Duration::from_secs(60),
            "the killed replica's tasks not done 60 s after the kill: {:?}",
            left.iter().map(of).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let finished = tasks(&suite).await?;
    for t in &left {
        let n = finished
            .iter()
            .find(|n| n.key == t.key)
            .ok_or_else(|| anyhow::anyhow!("task {:?} vanished", t.key))?;
        anyhow::ensure!(
            n.attempts > t.attempts && n.owner.ends_with(&main_owner),
            "{:?}: left at attempt {} by the replica, finished at attempt {} by {}",
            t.key,
            t.attempts,
            n.attempts,
            n.owner
        );
        // Taken over only once the replica's lease had run out: the main's claim (and so
        // its finish) came after the lease the replica last renewed.
        let (Some(lease_until), Some(done_at)) = (t.lease_until, n.done_at) else {
            anyhow::bail!(
                "{:?}: no lease at the kill ({t:?}) or no end ({n:?})",
                t.key
            );
        };
        anyhow::ensure!(
            done_at > lease_until,
            "{:?}: done at {done_at} by the main, before the replica's lease ran out at \
             {lease_until}",
            t.key
        );
    }
    for (request, person) in &requests {
        checks::erased_exactly_once(&suite, request, person).await?;
    }
    let mut by_service = std::collections::BTreeMap::<&str, usize>::new();
    for t in &left {
        *by_service.entry(t.key.1.as_str()).or_default() += 1;
    }
    println!(
        "rights replicas: {ERASURES} erasures submitted to the replica, killed {delay} ms \
         after the last, running {} tasks {by_service:?}; the main took them over {} ms \
         after the kill and finished them {} ms after it (task lease {TASK_LEASE_MS} ms); \
         every request completed, each erasure done once",
        left.len(),
        first_taken.unwrap_or(taken_over).as_millis(),
        taken_over.as_millis()
    );
    checks::no_personal_data(&suite, &replica)?;
    // Both processes appended to rights' one access trail, each moving the head it wrote
    // last without reading it, and one was killed mid-work: the chain still verifies.
    let verified = grpc::ok(
        &suite.pdm.channel("rights", Caller::Admin)?,
        "pdm.audit.v1.AuditService/VerifyAccessLog",
        &json!({}),
    )
    .await?;
    anyhow::ensure!(
        verified["intact"] == json!(true) && verified.get("entries").is_some(),
        "rights' access trail after two replicas wrote it: {verified}"
    );
    suite.finish().await
}

const CALL_TIMEOUT_MS: &str = "1000";
const PURGE_LEASE: Duration = Duration::from_secs(2);
const RUN_PURGE: &str = "pdm.retention.v1.RetentionService/RunPurge";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_purge_at_a_time_across_retention_replicas_and_a_killed_holders_run_is_taken_over()
-> anyhow::Result<()> {
    // Retention reaches telemetry through a proxy that holds its calls until told to pass
    // them: a run then lasts its call timeout, so runs started together overlap.
    let stall = Stall::holding().await?;
    let telemetry = stall.endpoint();
    let lease = PURGE_LEASE.as_secs().to_string();
    let suite = Suite::start_with(&[
        ("PDM__SERVICES__TELEMETRY__ENDPOINT", &telemetry),
        ("PDM__RETENTION__CALL_TIMEOUT_MS", CALL_TIMEOUT_MS),
        ("PDM__RETENTION__LEASE_SECONDS", &lease),
    ])
    .await?;
    let mut replica = suite.pdm.start_replica("retention", &[]).await?;
    let main = suite.pdm.channel("retention", Caller::Admin)?;
    let other = replica.channel(Caller::Admin)?;
    let run_purge = grpc::method(RUN_PURGE)?;

    let mut winners = Vec::new();
    for round in 0..3 {
        let request = json!({"triggeredBy": format!("replicas test, round {round}")});
        let main_call = grpc::call_json(&main, &run_purge, &request);
        let replica_call = grpc::call_json(&other, &run_purge, &request);
        // Whichever is asked first has a head start: each goes first in turn.
        let (main_answer, replica_answer) = if round % 2 == 0 {
            tokio::join!(main_call, replica_call)
        } else {
            let (replica_answer, main_answer) = tokio::join!(replica_call, main_call);
            (main_answer, replica_answer)
        };
        let (on_main, on_replica) = (main_answer?, replica_answer?);
        let (ran, winner) = match (on_main.code, on_replica.code) {
            (Code::Ok, Code::Aborted) => (&on_main, "main"),
            (Code::Aborted, Code::Ok) => (&on_replica, "replica"),
            _ => anyhow::bail!(
                "round {round}: two runs at once answered {:?} {:?} on the main and {:?} {:?} \
                 on the replica; exactly one may run, the other ABORTED",
                on_main.code,
                on_main.message,
                on_replica.code,
                on_replica.message
            ),
        };
        let last = ran
            .json(&run_purge.output())?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("round {round}: a run without messages"))?;
        // Held telemetry did not answer: proof that the run lasted its call timeout, and so
        // overlapped the one refused.
        anyhow::ensure!(
            last["run"]["status"] == "RUN_STATUS_PARTIAL",
            "round {round}: the run on the {winner} ended {}",
            last["run"]
        );
        winners.push(winner);
    }

    // A run on the replica, which is killed while the run waits for telemetry.
    let started = Instant::now();
    let first = grpc::call_raw_first(
        &other,
        &grpc::path(&run_purge),
        grpc::frame(&prost::Message::encode_to_vec(&grpc::from_json(
            &run_purge.input(),
            &json!({"triggeredBy": "replicas test, killed"}),
        )?)),
    )
    .await?;
    anyhow::ensure!(first.code == Code::Ok, "run on the replica: {first:?}");
    let progress = first.first(&run_purge.output())?;
    let killed_run = progress["run"]["runId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        progress["run"]["status"] == "RUN_STATUS_RUNNING" && !killed_run.is_empty(),
        "the replica's run is not running: {progress}"
    );
    replica.kill().await?;
    let killed_after = started.elapsed();
    // From now on only the dead holder's lease stands in the way.
    stall.pass_to(suite.pdm.port("telemetry")?);

    let mut aborted = 0;
    let (taken, ran) = loop {
        let answer = grpc::call_json(
            &main,
            &run_purge,
            &json!({"triggeredBy": "replicas test, after the kill"}),
        )
        .await?;
        match answer.code {
            Code::Aborted => aborted += 1,
            Code::Ok => break (started.elapsed(), answer),
            other => anyhow::bail!("a run on the main after the kill: {other:?} {answer:?}"),
        }
        anyhow::ensure!(
            started.elapsed() < PURGE_LEASE + Duration::from_secs(30),
            "runs on the main still ABORTED {:?} after the killed replica took the lease",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    anyhow::ensure!(
        aborted > 0,
        "the main ran at once while the killed replica's lease was live"
    );
    // The lease was taken after `started`, so it cannot have expired before this.
    anyhow::ensure!(
        taken >= PURGE_LEASE,
        "the main ran {taken:?} after the replica's run started, inside its lease \
         ({PURGE_LEASE:?})"
    );
    let last = ran
        .json(&run_purge.output())?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the main's run without messages"))?;
    anyhow::ensure!(
        last["run"]["status"] == "RUN_STATUS_COMPLETED",
        "the main's run after the lease ended {}",
        last["run"]
    );
    // The killed run: found interrupted (partial) by the main's run, and finished by it.
    let found = grpc::ok(
        &main,
        "pdm.retention.v1.RetentionService/GetPurgeRun",
        &json!({"runId": killed_run}),
    )
    .await?;
    anyhow::ensure!(
        found["run"]["status"] == "RUN_STATUS_PARTIAL",
        "the killed replica's run after the main's: {}",
        found["run"]
    );
    let retry = grpc::method("pdm.retention.v1.RetentionService/RetryPurge")?;
    let retry_answer = grpc::call_json(&main, &retry, &json!({"runId": killed_run})).await?;
    anyhow::ensure!(
        retry_answer.code == Code::Ok,
        "retrying the killed run: {retry_answer:?}"
    );
    let retried = retry_answer
        .json(&retry.output())?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("a retry without messages"))?;
    anyhow::ensure!(
        retried["run"]["status"] == "RUN_STATUS_COMPLETED",
        "the killed run retried on the main: {}",
        retried["run"]
    );
    println!(
        "retention replicas: 3 rounds of two runs at once, one ran each time (on the \
         {winners:?}), the other ABORTED; replica killed {} ms into its run; the main \
         ABORTED {aborted} times, then ran {} ms after the replica took the lease \
         ({} s), and completed the killed run",
        killed_after.as_millis(),
        taken.as_millis(),
        PURGE_LEASE.as_secs()
    );
    checks::no_personal_data(&suite, &replica)?;
    suite.finish().await
}

const INGEST: &str = "pdm.telemetry.v1.TelemetryService/IngestEvents";
const EVENTS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_stored_once_whichever_telemetry_replica_receives_it() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let mut replica = suite.pdm.start_replica("telemetry", &[]).await?;
    let recipient = people::register_recipient(&suite).await?;
    let person = people::person_with_data(&suite, &recipient).await?;
    suite.world.personal.extend(person.values.clone());
    let main = suite.pdm.channel("telemetry", Caller::Client)?;
    let other = replica.channel(Caller::Client)?;
    let counted = suite.pdm.channel("telemetry", Caller::Service("rights"))?;
    let batch = |name: &str| {
        let events: Vec<Value> = (0..EVENTS)
            .map(|i| {
                json!({"subjectId": person.subject, "kind": "EVENT_KIND_FEATURE_USED",
                "occurredAt": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "feature": format!("feature-{}", i % 5), "device": {"osName": "Linux"}})
            })
            .collect();
        json!({"batchId": format!("{name}-{}", person.subject), "events": events})
    };
    // person_with_data ingested 3.
    let mut stored = 3;
    anyhow::ensure!(checks::count_events(&counted, &person.subject).await? == stored);

    // Stored on the main, retried on the replica.
    let retried = batch("retried");
    let retried_first = grpc::ok(&main, INGEST, &retried).await?;
    let retried_again = grpc::ok(&other, INGEST, &retried).await?;
    stored += EVENTS;
    same_batch("retried on the replica", &retried_first, &retried_again)?;
    let after_retry = checks::count_events(&counted, &person.subject).await?;
    anyhow::ensure!(
        after_retry == stored,
        "a batch retried on the replica: {after_retry} events, {stored} sent once"
    );

    // Sent to both at once.
    let racing = batch("racing");
    let (main_answer, replica_answer) = tokio::join!(
        grpc::ok(&main, INGEST, &racing),
        grpc::ok(&other, INGEST, &racing)
    );
    let (on_main, on_replica) = (main_answer?, replica_answer?);
    stored += EVENTS;
    let (racing_first, racing_again) = if on_main["duplicate"] == true {
        (on_replica, on_main)
    } else {
        (on_main, on_replica)
    };
    same_batch("sent to both at once", &racing_first, &racing_again)?;
    let seen_by_replica = checks::count_events(
        &replica.channel(Caller::Service("rights"))?,
        &person.subject,
    )
    .await?;
    anyhow::ensure!(
        seen_by_replica == stored,
        "a batch sent to both at once: the replica exports {seen_by_replica} events, \
         {stored} sent once"
    );

    // Acknowledged by the replica, which is killed at once; the client retries on the main.
    let acknowledged = batch("acknowledged");
    let acked_first = grpc::ok(&other, INGEST, &acknowledged).await?;
    replica.kill().await?;
    let acked_again = grpc::ok(&main, INGEST, &acknowledged).await?;
    stored += EVENTS;
    same_batch(
        "acknowledged by a killed replica, retried on the main",
        &acked_first,
        &acked_again,
    )?;
    let count = checks::count_events(&counted, &person.subject).await?;
    anyhow::ensure!(
        count == stored,
        "a batch acknowledged by a killed replica and retried on the main: {count} events, \
         {stored} sent once"
    );
    println!(
        "telemetry replicas: 3 batches of {EVENTS}, each sent to two replicas (one after \
         the other, at once, to a replica killed after its answer): {count} events, as sent"
    );
    checks::no_personal_data(&suite, &replica)?;
    suite.finish().await
}

/// The first answer to a batch and the answer to the same batch again: every event
/// accepted once, the second marked a duplicate and otherwise the same.
fn same_batch(how: &str, first: &Value, again: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(
        first["accepted"] == EVENTS && first["duplicate"] != true,
        "{how}: the first answer {first}"
    );
    anyhow::ensure!(
        again["duplicate"] == true
            && again["accepted"] == first["accepted"]
            && again["dropped"] == first["dropped"],
        "{how}: the answer again {again}, the first {first}"
    );
    Ok(())
}

/// A row of rights' `tasks` table.
#[derive(Debug, Clone)]
struct Task {
    /// (request, service, action).
    key: (String, String, String),
    status: String,
    /// The replica that claimed it last (`host:port`).
    owner: String,
    attempts: u32,
    lease_until: Option<DateTime<Utc>>,
    done_at: Option<DateTime<Utc>>,
}

async fn tasks(suite: &Suite) -> anyhow::Result<Vec<Task>> {
    let rows = suite
        .pdm
        .backend()
        .rows(
            &suite.pdm.data_dir(),
            "rights",
            "tasks",
            &[
                "request_id",
                "service",
                "action",
                "status",
                "lease_owner",
                "attempts",
                "lease_until",
                "done_at",
            ],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Task {
                key: (r[0].clone(), r[1].clone(), r[2].clone()),
                status: r[3].clone(),
                owner: r[4].clone(),
                attempts: r[5].parse()?,
                lease_until: timestamp(&r[6])?,
                done_at: timestamp(&r[7])?,
            })
        })
        .collect()
}

/// A timestamp column as text: SQLite's (`2026-12-05 12:40:00.123456+00:00`) or
/// PostgreSQL's (`2026-12-05 12:40:00.123456+00`); empty for NULL.
fn timestamp(text: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map_err(|e| anyhow::anyhow!("timestamp {text:?}: {e}"))?;
    Ok(Some(parsed.with_timezone(&Utc)))
}
