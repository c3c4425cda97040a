//! The churn soak (issue 19): `make soak` (PostgreSQL only; `SOAK_SECONDS`, default 600,
//! and `SOAK_KILL_EVERY_MS`, e.g. `8000-15000`; CI runs `make soak SOAK_SECONDS=90
//! SOAK_KILL_EVERY_MS=8000-15000`). Not part of `make e2e`: the test is `#[ignore]`d.
//!
//! Two replicas of every service: `pdm serve all` and one `pdm serve <service>` each, all
//! on one PostgreSQL database, every service's endpoint naming both (so the services reach
//! each other round-robin too). A mixed load spreads its calls over both replicas of a
//! service, alternating per call, and goes on through errors: consent grants and
//! withdrawals of three subjects, each followed by a check on the other replica with the
//! write's consistency token (read-your-writes) and a check without one; batches of usage
//! events with batch ids, retried with the same id until acknowledged; access and erasure
//! requests vouched for by the privacy team, retried with the same client reference until
//! acknowledged; one purge run halfway, repeated while `ABORTED` or unreachable until it
//! runs. Meanwhile every 20–40 s (`PDM_SOAK_KILL_EVERY_MS`) one of the processes, chosen at
//! random (the main one counts as a replica of each service), is killed with `SIGKILL`
//! and started again a moment later (up to 3 times, as a supervisor would, when it exits
//! while starting: each such start is listed in the report as `failed_restarts`).
//!
//! Once the churn stops and everything serves again it requires: every acknowledged
//! consent write in the ledger at its sequence; every acknowledged batch's events stored
//! exactly once; every request (acknowledged or not) `COMPLETED` within 2 minutes, each
//! erasure done exactly once by each service; no stale read behind a consistency token; no
//! personal value in any process's log; every replica exiting cleanly on `SIGTERM`. It
//! prints one JSON line: kills, calls, errors and latencies per kind of call during the
//! churn, acknowledged writes per kind, lost and stuck (both must be 0).
//!
//! Settings that bound the waits so takeovers happen within the run: a rights task lease
//! of 3 s and retries at most 5 s apart; a purge lease of 10 s with 5-s calls.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use pdm_e2e::{
    Caller, Pdm, Replica, Suite, checks, grpc,
    people::{self, Person},
    suite::random_below,
};
use prost_reflect::MethodDescriptor;
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

const GRANT: &str = "pdm.consent.v1.ConsentService/GrantConsent";
const WITHDRAW: &str = "pdm.consent.v1.ConsentService/WithdrawConsent";
const CHECK: &str = "pdm.consent.v1.ConsentService/CheckProcessing";
const INGEST: &str = "pdm.telemetry.v1.TelemetryService/IngestEvents";
const SUBMIT: &str = "pdm.rights.v1.RightsService/SubmitRequest";
const RUN_PURGE: &str = "pdm.retention.v1.RetentionService/RunPurge";
/// A purpose resting on consent in the UK, where `people` makes everyone.
const PURPOSE: &str = "product_analytics";
const TEXT_HASH: &str = "4b1d6c0e2f3a5b7c9d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";

/// Subjects whose consent the load grants and withdraws, one per worker.
const CONSENT_WORKERS: usize = 3;
/// Workers sending event batches, each for subjects of its own.
const INGEST_WORKERS: usize = 2;
const SUBJECTS_PER_INGEST_WORKER: usize = 2;
const EVENTS_PER_BATCH: usize = 10;
/// `person_with_data` ingests this many events of each person.
const EVENTS_AT_SIGN_UP: u64 = 3;
/// Between two requests submitted (access and erasure in turn).
const REQUEST_EVERY: Duration = Duration::from_secs(2);
const CONSENT_PACE: Duration = Duration::from_millis(100);
const INGEST_PACE: Duration = Duration::from_millis(400);
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a write in flight when the churn stops may still be retried.
const FINISH_BOUND: Duration = Duration::from_secs(60);
/// How long after the churn every request has to complete.
const COMPLETE_BOUND: Duration = Duration::from_secs(120);

const TASK_LEASE_MS: &str = "3000";
const MAX_BACKOFF_SECS: &str = "5";
const PURGE_LEASE_SECONDS: &str = "10";
const PURGE_CALL_TIMEOUT_MS: &str = "5000";
/// Connections per database pool: `serve all` holds one per service and one for the web
/// front, and each service has a replica: 15 pools of 4 stay well under PostgreSQL's default
/// max_connections of 100. The default of 16 does not, and a 300-s soak saw restarted
/// replicas fail their migrations on `connection_acquire`.
const POOL_PER_SERVICE: &str = "4";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the churn soak: make soak"]
async fn under_churn_no_acknowledged_write_is_lost_and_no_request_is_stuck() -> anyhow::Result<()> {
    let plan = Plan::from_env()?;
    anyhow::ensure!(
        matches!(
            std::env::var("PDM_TEST_DATABASE").as_deref(),
            Ok("postgres" | "postgresql")
        ),
        "the churn soak runs on PostgreSQL only: PDM_TEST_DATABASE=postgres (make soak sets it)"
    );
    let mut suite = Suite::start_with(&[
        ("PDM__RIGHTS__TASK_LEASE_MS", TASK_LEASE_MS),
        ("PDM__RIGHTS__MAX_BACKOFF_SECS", MAX_BACKOFF_SECS),
        ("PDM__RETENTION__LEASE_SECONDS", PURGE_LEASE_SECONDS),
        ("PDM__RETENTION__CALL_TIMEOUT_MS", PURGE_CALL_TIMEOUT_MS),
        ("PDM__DATABASE__MAX_CONNECTIONS", POOL_PER_SERVICE),
    ])
    .await?;
    anyhow::ensure!(
        suite.pdm.backend().is_postgres(),
        "the churn soak runs on PostgreSQL only, and the mesh started on SQLite"
    );
    let setting_up = Instant::now();
    let mut replicas = replicate(&mut suite.pdm).await?;
    let people = People::make(&mut suite, &plan).await?;
    let set_up = setting_up.elapsed();

    let pair = |service: &str, caller: Caller| -> anyhow::Result<[Channel; 2]> {
        let other = replicas
            .iter()
            .find(|r| r.service() == service)
            .with_context(|| format!("no {service} replica"))?;
        Ok([suite.pdm.channel(service, caller)?, other.channel(caller)?])
    };
    let load = Load::default();
    let mut consent = Vec::new();
    for (w, subject) in people.consent.iter().enumerate() {
        let (load, pair) = (load.clone(), pair("consent", Caller::Client)?);
        consent.push(tokio::spawn(consent_worker(load, pair, subject.clone(), w)));
    }
    let mut ingest = Vec::new();
    for (w, subjects) in people.ingest.chunks(SUBJECTS_PER_INGEST_WORKER).enumerate() {
        let (load, pair) = (load.clone(), pair("telemetry", Caller::Client)?);
        ingest.push(tokio::spawn(ingest_worker(
            load,
            pair,
            subjects.to_vec(),
            w,
        )));
    }
    let requests = tokio::spawn(request_worker(
        load.clone(),
        pair("rights", Caller::Admin)?,
        people.consent.clone(),
        people.erasure.clone(),
    ));
    let purge = tokio::spawn(purge_worker(
        load.clone(),
        pair("retention", Caller::Admin)?,
        plan.soak / 2,
    ));

    let churn_started = Instant::now();
    let churned = churn(&mut suite.pdm, &mut replicas, &plan).await;
    load.stop();
    let churn_lasted = churn_started.elapsed();
    let kills = churned?;
    // The killer restarts what it kills; this is in case a restart is what failed.
    if !suite.pdm.is_running() {
        suite.pdm.restart().await?;
    }
    for replica in &mut replicas {
        if !replica.is_running() {
            replica.restart().await?;
        }
    }
    let stopped = Instant::now();

    let mut consent_writes = Vec::new();
    let mut stale = Vec::new();
    for worker in consent {
        let done = worker.await??;
        consent_writes.extend(done.writes);
        stale.extend(done.stale);
    }
    let mut batches = Vec::new();
    let mut unresolved = Vec::new();
    for worker in ingest {
        let done = worker.await??;
        batches.extend(done.batches);
        unresolved.extend(done.unresolved);
    }
    let submitted = requests.await??;
    unresolved.extend(submitted.unresolved.iter().cloned());
    let purged = purge.await??;

    // === the checks ===
    let mut failures = Vec::new();
    let lost_consent = consent_lost(&suite, &consent_writes).await?;
    let events = events_stored(&suite, &people.ingest, &batches).await?;
    let settled = settle(&suite, &submitted.acked, stopped).await?;
    let mut erasures_failed = Vec::new();
    for request in &submitted.acked {
        if let Some(person) = &request.person
            && !settled.stuck.iter().any(|(id, _)| id == &request.id)
            && let Err(e) = checks::erased_exactly_once(&suite, &request.id, person).await
        {
            erasures_failed.push(format!("{e:#}"));
        }
    }
    let dropped: Vec<&Batch> = batches
        .iter()
        .filter(|b| b.accepted != EVENTS_PER_BATCH as u64)
        .collect();

    let lost = lost_consent.len() as u64 + events.lost + settled.missing.len() as u64;
    let stats = load.stats();
    let erasures = submitted
        .acked
        .iter()
        .filter(|r| r.person.is_some())
        .count();
    let report = json!({
        "soak_seconds": plan.soak.as_secs(),
        "churn_ms": churn_lasted.as_millis() as u64,
        "set_up_ms": set_up.as_millis() as u64,
        "kill_every_ms": [plan.kill_every.0, plan.kill_every.1],
        "processes": replicas.len() + 1,
        "kills": kills.len(),
        "killed": kills.iter().fold(BTreeMap::<&str, u64>::new(), |mut by, k| {
            *by.entry(k.process.as_str()).or_default() += 1;
            by
        }),
        "down_ms_max": kills.iter().map(|k| k.down.as_millis() as u64).max().unwrap_or(0),
        "failed_restarts": kills.iter().flat_map(|k| k.failed_starts.clone()).collect::<Vec<_>>(),
        "calls": stats.calls(),
        "errors": stats.errors(),
        "error_rate": stats.error_rate(),
        "errors_by_code": stats.errors_by_code(),
        "per_kind": stats.per_kind(),
        "calls_after_churn": stats.after_calls,
        "errors_after_churn": stats.after_errors,
        "acknowledged": {
            "consent_writes": consent_writes.len(),
            "batches": batches.len(),
            "events": batches.iter().map(|b| b.accepted).sum::<u64>(),
            "requests": submitted.acked.len(),
            "access_requests": submitted.acked.len() - erasures,
            "erasure_requests": erasures,
            "purge_runs": usize::from(purged.ran.is_some()),
        },
        "purge": {
            "status": purged.ran.as_ref().map(|r| r.status.clone()),
            "attempts": purged.attempts,
            "refusals": purged.refusals,
        },
        "requests_in_table": settled.rows,
        "completed_within_ms": settled.took.as_millis() as u64,
        "lost": lost,
        "duplicated": events.duplicated,
        "stuck": settled.stuck.len(),
        "stale_reads": stale.len(),
        "batches_with_drops": dropped.len(),
        "erasures_not_exactly_once": erasures_failed.len(),
        "unacknowledged_after_churn": unresolved.len(),
    });
    println!("{report}");

    for line in &lost_consent {
        failures.push(format!("LOST consent write: {line}"));
    }
    for line in &events.problems {
        failures.push(format!("events: {line}"));
    }
    for id in &settled.missing {
        failures.push(format!(
            "LOST request: {id} was acknowledged and is not in rights' requests table"
        ));
    }
    for (id, state) in &settled.stuck {
        failures.push(format!(
            "STUCK request {id}: not COMPLETED {} s after the churn: {state}",
            COMPLETE_BOUND.as_secs()
        ));
    }
    for line in erasures_failed {
        failures.push(format!("erasure not done exactly once: {line}"));
    }
    for line in stale {
        failures.push(format!("stale read behind a consistency token: {line}"));
    }
    for batch in dropped {
        failures.push(format!(
            "batch {} of a consenting subject: {} of {EVENTS_PER_BATCH} events accepted, \
             dropped {}",
            batch.id, batch.accepted, batch.dropped
        ));
    }
    for id in unresolved {
        failures.push(format!(
            "{id}: still not acknowledged {} s after the churn stopped",
            FINISH_BOUND.as_secs()
        ));
    }
    if purged.ran.is_none() {
        failures.push(format!(
            "the purge never ran: {} attempts, refused {:?}",
            purged.attempts, purged.refusals
        ));
    }
    for replica in &replicas {
        if let Err(e) = checks::no_personal_data(&suite, replica) {
            failures.push(format!("{e:#}"));
        }
    }
    for replica in &mut replicas {
        if let Err(e) = replica.terminate().await {
            failures.push(format!("{e:#}"));
        }
    }
    if let Err(e) = suite.finish().await {
        failures.push(format!("the main process: {e:#}"));
    }
    anyhow::ensure!(
        failures.is_empty(),
        "the churn soak failed ({} problems):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

// === the plan ===

/// How long to churn and how often to kill.
#[derive(Debug, Clone, Copy)]
struct Plan {
    soak: Duration,
    /// Between kills, uniformly: (least, most) milliseconds.
    kill_every: (u64, u64),
}

impl Plan {
    /// `PDM_SOAK_SECONDS` (default 600) and `PDM_SOAK_KILL_EVERY_MS` (`least-most`, default
    /// `20000-40000`); empty counts as unset (the Makefile passes both through).
    fn from_env() -> anyhow::Result<Self> {
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let seconds = match set("PDM_SOAK_SECONDS") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .with_context(|| format!("PDM_SOAK_SECONDS={v:?} is not a number of seconds"))?,
            None => 600,
        };
        let kill_every = match set("PDM_SOAK_KILL_EVERY_MS") {
            Some(v) => {
                let (least, most) = v
                    .trim()
                    .split_once('-')
                    .with_context(|| format!("PDM_SOAK_KILL_EVERY_MS={v:?}: least-most"))?;
                let ms = |s: &str| {
                    s.trim()
                        .parse::<u64>()
                        .with_context(|| format!("PDM_SOAK_KILL_EVERY_MS={v:?}: least-most"))
                };
                (ms(least)?, ms(most)?)
            }
            None => (20_000, 40_000),
        };
        anyhow::ensure!(seconds >= 10, "PDM_SOAK_SECONDS: at least 10");
        anyhow::ensure!(
            kill_every.0 >= 1000 && kill_every.0 <= kill_every.1,
            "PDM_SOAK_KILL_EVERY_MS: least at least 1000 and not above most"
        );
        Ok(Self {
            soak: Duration::from_secs(seconds),
            kill_every,
        })
    }
}

// === the mesh ===

/// A second replica of every service, and every process (restarted) told both replicas'
/// addresses of every service.
async fn replicate(pdm: &mut Pdm) -> anyhow::Result<Vec<Replica>> {
    let mut replicas = Vec::new();
    for service in pdm.services().to_vec() {
        replicas.push(pdm.start_replica(&service, &[]).await?);
    }
    let mut endpoints = Vec::new();
    for replica in &replicas {
        let service = replica.service();
        endpoints.push((
            format!("PDM__SERVICES__{}__ENDPOINT", service.to_ascii_uppercase()),
            format!(
                "http://127.0.0.1:{},http://127.0.0.1:{}",
                pdm.port(service)?,
                replica.port()
            ),
        ));
    }
    for (key, value) in &endpoints {
        pdm.set_env(key, value);
        for replica in &mut replicas {
            replica.set_env(key, value);
        }
    }
    pdm.restart().await?;
    for replica in &mut replicas {
        replica.restart().await?;
    }
    Ok(replicas)
}

/// The people the load works on, made before the churn through the main process.
struct People {
    /// One per consent worker; their access requests too.
    consent: Vec<String>,
    /// Whose events are sent.
    ingest: Vec<String>,
    /// One per erasure request.
    erasure: Vec<Person>,
}

impl People {
    async fn make(suite: &mut Suite, plan: &Plan) -> anyhow::Result<Self> {
        let recipient = people::register_recipient(suite).await?;
        let erasures = usize::try_from(plan.soak.as_secs() / (2 * REQUEST_EVERY.as_secs()))?;
        let wanted = CONSENT_WORKERS + INGEST_WORKERS * SUBJECTS_PER_INGEST_WORKER + erasures + 1;
        let shared: &Suite = suite;
        let made: Vec<anyhow::Result<Person>> = futures_util::stream::iter(
            (0..wanted).map(|_| people::person_with_data(shared, &recipient)),
        )
        .buffer_unordered(4)
        .collect()
        .await;
        let mut persons = made.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        for person in &persons {
            suite.world.personal.extend(person.values.clone());
        }
        let consent = persons
            .drain(..CONSENT_WORKERS)
            .map(|p| p.subject)
            .collect();
        let ingest = persons
            .drain(..INGEST_WORKERS * SUBJECTS_PER_INGEST_WORKER)
            .map(|p| p.subject)
            .collect();
        Ok(Self {
            consent,
            ingest,
            erasure: persons,
        })
    }
}

// === the killer ===

/// One kill: which process, and how long until it served again.
struct Kill {
    process: String,
    down: Duration,
    /// Starts after the kill that failed (the process exited while starting), each the
    /// last line it logged; it is started again, as a supervisor would, up to [`STARTS`].
    failed_starts: Vec<String>,
}

/// Starts of a killed process before the soak gives up on it.
const STARTS: usize = 3;

/// The last line of an error (a failed start ends with the process's last log line).
fn last_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Until `plan.soak` has passed: every 20–40 s (the plan's interval) one process chosen at
/// random is killed with `SIGKILL`, left down a moment, and started again.
async fn churn(pdm: &mut Pdm, replicas: &mut [Replica], plan: &Plan) -> anyhow::Result<Vec<Kill>> {
    let until = Instant::now() + plan.soak;
    let mut kills = Vec::new();
    loop {
        let (least, most) = plan.kill_every;
        let wait = Duration::from_millis(least + random_below(most - least + 1));
        if Instant::now() + wait >= until {
            tokio::time::sleep_until(until.into()).await;
            return Ok(kills);
        }
        tokio::time::sleep(wait).await;
        let who = usize::try_from(random_below(replicas.len() as u64 + 1))?;
        let killed = Instant::now();
        let down = Duration::from_millis(300 + random_below(1700));
        let mut failed_starts = Vec::new();
        let process = if who == 0 {
            pdm.kill().await?;
            tokio::time::sleep(down).await;
            let mut attempt = 1;
            while let Err(e) = pdm.restart().await {
                anyhow::ensure!(
                    attempt < STARTS,
                    "the main process did not come back after SIGKILL ({STARTS} starts): {e:#}"
                );
                failed_starts.push(format!("all: {}", last_line(&e)));
                attempt += 1;
            }
            "all".to_owned()
        } else {
            let replica = &mut replicas[who - 1];
            replica.kill().await?;
            tokio::time::sleep(down).await;
            let mut attempt = 1;
            while let Err(e) = replica.restart().await {
                anyhow::ensure!(
                    attempt < STARTS,
                    "the {} replica did not come back after SIGKILL ({STARTS} starts): {e:#}",
                    replica.service()
                );
                failed_starts.push(format!("{}: {}", replica.service(), last_line(&e)));
                attempt += 1;
            }
            replica.service().to_owned()
        };
        kills.push(Kill {
            process,
            down: killed.elapsed(),
            failed_starts,
        });
    }
}

// === the load ===

/// What the load shares: whether the churn stopped, and what every call answered.
#[derive(Clone, Default)]
struct Load {
    stopped: Arc<AtomicBool>,
    since_stop: Arc<Mutex<Option<Instant>>>,
    stats: Arc<Mutex<Stats>>,
}

/// Why a call did not answer OK.
#[derive(Debug, Clone)]
enum Refusal {
    /// A status.
    Status(Code, String),
    /// No status at all: a refused connection, a reset stream.
    Transport(String),
}

impl Refusal {
    fn message(&self) -> &str {
        match self {
            Self::Status(_, message) | Self::Transport(message) => message,
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Status(code, _) => format!("{code:?}"),
            Self::Transport(_) => "transport".to_owned(),
        }
    }
}

impl Load {
    fn stop(&self) {
        *self
            .since_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Whether a write still unacknowledged must be given up ([`FINISH_BOUND`] after the
    /// churn).
    fn given_up(&self) -> bool {
        self.since_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() > FINISH_BOUND)
    }

    fn stats(&self) -> Stats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls `method` and records how it went under `kind`; the answer's messages as JSON.
    async fn call(
        &self,
        kind: &'static str,
        channel: &Channel,
        method: &MethodDescriptor,
        request: &Value,
    ) -> Result<Vec<Value>, Refusal> {
        let during = !self.stopped();
        let started = Instant::now();
        let outcome = match grpc::call_json(channel, method, request).await {
            Ok(answer) if answer.code == Code::Ok => answer
                .json(&method.output())
                .map_err(|e| Refusal::Status(Code::Internal, format!("undecodable: {e}"))),
            Ok(answer) => Err(Refusal::Status(answer.code, answer.message)),
            Err(e) => Err(Refusal::Transport(format!("{e:#}"))),
        };
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(kind, during, started.elapsed(), outcome.as_ref().err());
        outcome
    }
}

/// Calls per kind during the churn; counts only after it.
#[derive(Debug, Clone, Default)]
struct Stats {
    during: BTreeMap<&'static str, KindStats>,
    after_calls: u64,
    after_errors: u64,
}

#[derive(Debug, Clone, Default)]
struct KindStats {
    /// Latencies of the calls answered OK, in microseconds.
    ok_micros: Vec<u64>,
    errors: BTreeMap<String, u64>,
    /// The first message of each kind of error, to tell what the errors were.
    samples: BTreeMap<String, String>,
}

impl Stats {
    fn record(
        &mut self,
        kind: &'static str,
        during: bool,
        took: Duration,
        refused: Option<&Refusal>,
    ) {
        if !during {
            self.after_calls += 1;
            self.after_errors += u64::from(refused.is_some());
            return;
        }
        let of = self.during.entry(kind).or_default();
        match refused {
            None => of
                .ok_micros
                .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            Some(refusal) => {
                *of.errors.entry(refusal.label()).or_default() += 1;
                of.samples
                    .entry(refusal.label())
                    .or_insert_with(|| refusal.message().chars().take(200).collect());
            }
        }
    }

    fn calls(&self) -> u64 {
        self.during
            .values()
            .map(|k| k.ok_micros.len() as u64 + k.errors.values().sum::<u64>())
            .sum()
    }

    fn errors(&self) -> u64 {
        self.during
            .values()
            .map(|k| k.errors.values().sum::<u64>())
            .sum()
    }

    fn error_rate(&self) -> f64 {
        let calls = self.calls();
        if calls == 0 {
            return 0.0;
        }
        (self.errors() as f64 / calls as f64 * 10_000.0).round() / 10_000.0
    }

    fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut by = BTreeMap::new();
        for kind in self.during.values() {
            for (code, n) in &kind.errors {
                *by.entry(code.clone()).or_default() += n;
            }
        }
        by
    }

    fn per_kind(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (kind, of) in &self.during {
            let mut sorted = of.ok_micros.clone();
            sorted.sort_unstable();
            let errors: u64 = of.errors.values().sum();
            out.insert(
                (*kind).to_owned(),
                json!({
                    "calls": sorted.len() as u64 + errors,
                    "errors": errors,
                    "p50_ms": percentile_ms(&sorted, 50),
                    "p99_ms": percentile_ms(&sorted, 99),
                    "error_samples": of.samples,
                }),
            );
        }
        Value::Object(out)
    }
}

/// The `p`th percentile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    (sorted[rank - 1] as f64 / 100.0).round() / 10.0
}

/// An acknowledged consent write.
#[derive(Debug, Clone)]
struct ConsentWrite {
    sequence: i64,
    subject: String,
    kind: String,
}

struct ConsentDone {
    writes: Vec<ConsentWrite>,
    /// Checks behind a write's token that did not see it.
    stale: Vec<String>,
}

/// Grants and withdraws `subject`'s consent in turn, alternating replicas; after each
/// acknowledged write, checks on the other replica with its consistency token (the answer
/// must reflect the write), then once without a token.
async fn consent_worker(
    load: Load,
    pair: [Channel; 2],
    subject: String,
    worker: usize,
) -> anyhow::Result<ConsentDone> {
    let grant = grpc::method(GRANT)?;
    let withdraw = grpc::method(WITHDRAW)?;
    let check = grpc::method(CHECK)?;
    let mut done = ConsentDone {
        writes: Vec::new(),
        stale: Vec::new(),
    };
    let mut turn = worker;
    while !load.stopped() {
        let granting = turn.is_multiple_of(2);
        let (to, other) = (&pair[turn % 2], &pair[(turn + 1) % 2]);
        turn += 1;
        let written = if granting {
            let request = json!({"subjectId": subject, "purpose": PURPOSE,
                "source": "SOURCE_WEB_FORM", "policyVersion": "2024-06-28",
                "textHash": TEXT_HASH, "actor": "churn-soak"});
            load.call("consent.grant", to, &grant, &request).await
        } else {
            let request = json!({"subjectId": subject, "purpose": PURPOSE,
                "source": "SOURCE_WEB_FORM", "actor": "churn-soak"});
            load.call("consent.withdraw", to, &withdraw, &request).await
        };
        if let Ok(answer) = written {
            let first = answer
                .first()
                .context("a consent write without an answer")?;
            let entry = &first["entry"];
            let sequence = int64(&entry["sequence"])
                .with_context(|| format!("a consent write without a sequence: {first}"))?;
            done.writes.push(ConsentWrite {
                sequence,
                subject: subject.clone(),
                kind: entry["kind"].as_str().unwrap_or_default().to_owned(),
            });
            let token = first["consistencyToken"].as_str().unwrap_or_default();
            let request = json!({"subjectId": subject, "purpose": PURPOSE, "atLeast": token});
            if let Ok(checked) = load
                .call("consent.check_at_token", other, &check, &request)
                .await
            {
                let allowed = checked
                    .first()
                    .and_then(|c| c["decision"]["allowed"].as_bool())
                    .unwrap_or(false);
                if allowed != granting {
                    done.stale.push(format!(
                        "after the {} at sequence {sequence} (token {token}), a check on \
                         the other replica answered allowed={allowed}",
                        if granting { "grant" } else { "withdrawal" }
                    ));
                }
            }
        }
        let request = json!({"subjectId": subject, "purpose": PURPOSE});
        let _ = load.call("consent.check", to, &check, &request).await;
        tokio::time::sleep(CONSENT_PACE).await;
    }
    Ok(done)
}

/// An int64 as proto3 JSON writes it (a string), or a number.
fn int64(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// An acknowledged batch.
#[derive(Debug, Clone)]
struct Batch {
    id: String,
    subject: String,
    accepted: u64,
    dropped: Value,
}

struct IngestDone {
    batches: Vec<Batch>,
    /// Batches never acknowledged, not even after the churn.
    unresolved: Vec<String>,
}

/// Sends batches of events of `subjects` in turn; a batch is sent again (same batch id,
/// to the other replica) until acknowledged, after the churn too.
async fn ingest_worker(
    load: Load,
    pair: [Channel; 2],
    subjects: Vec<String>,
    worker: usize,
) -> anyhow::Result<IngestDone> {
    let ingest = grpc::method(INGEST)?;
    let mut done = IngestDone {
        batches: Vec::new(),
        unresolved: Vec::new(),
    };
    let mut turn = worker;
    let mut n = 0usize;
    while !load.stopped() {
        let subject = &subjects[n % subjects.len()];
        let id = format!("soak-{worker}-{n}-{}", uuid::Uuid::now_v7().simple());
        n += 1;
        let events: Vec<Value> = (0..EVENTS_PER_BATCH)
            .map(|i| {
                json!({"subjectId": subject, "kind": "EVENT_KIND_FEATURE_USED",
                "occurredAt": chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "feature": format!("feature-{}", i % 5), "device": {"osName": "Linux"}})
            })
            .collect();
        let request = json!({"batchId": id, "events": events});
        loop {
            let to = &pair[turn % 2];
            turn += 1;
            match load.call("telemetry.ingest", to, &ingest, &request).await {
                Ok(answer) => {
                    let first = answer.first().context("a batch without an answer")?;
                    done.batches.push(Batch {
                        id,
                        subject: subject.clone(),
                        accepted: first["accepted"].as_u64().unwrap_or(0),
                        dropped: first["dropped"].clone(),
                    });
                    break;
                }
                Err(_) if load.given_up() => {
                    done.unresolved.push(format!("batch {id}"));
                    break;
                }
                Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
        tokio::time::sleep(INGEST_PACE).await;
    }
    Ok(done)
}

/// An acknowledged request, with the person for an erasure.
#[derive(Debug, Clone)]
struct Submitted {
    id: String,
    person: Option<Person>,
}

struct RequestsDone {
    acked: Vec<Submitted>,
    unresolved: Vec<String>,
}

/// Every [`REQUEST_EVERY`], an access request (of `access` subjects in turn) or an
/// erasure (of the next of `erasures`), in turn; each sent again with the same client
/// reference until acknowledged.
async fn request_worker(
    load: Load,
    pair: [Channel; 2],
    access: Vec<String>,
    erasures: Vec<Person>,
) -> anyhow::Result<RequestsDone> {
    let submit = grpc::method(SUBMIT)?;
    let mut erasures = erasures.into_iter();
    let mut done = RequestsDone {
        acked: Vec::new(),
        unresolved: Vec::new(),
    };
    let mut turn = 0usize;
    let mut n = 0usize;
    while !load.stopped() {
        let person = if n % 2 == 1 { erasures.next() } else { None };
        let (kind, subject) = match &person {
            Some(person) => ("REQUEST_KIND_ERASURE", person.subject.clone()),
            None => ("REQUEST_KIND_ACCESS", access[n % access.len()].clone()),
        };
        n += 1;
        let reference = format!("soak-{}", uuid::Uuid::now_v7().simple());
        let request = people::submit_request(kind, &subject, Some(&reference));
        loop {
            let to = &pair[turn % 2];
            turn += 1;
            match load.call("rights.submit", to, &submit, &request).await {
                Ok(answer) => {
                    let first = answer.first().context("a submission without an answer")?;
                    let id = first["request"]["requestId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    anyhow::ensure!(!id.is_empty(), "no request id: {first}");
                    done.acked.push(Submitted { id, person });
                    break;
                }
                Err(_) if load.given_up() => {
                    done.unresolved.push(format!("{kind} request {reference}"));
                    break;
                }
                Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
        tokio::time::sleep(REQUEST_EVERY).await;
    }
    Ok(done)
}

/// The purge run that ran.
struct Ran {
    status: String,
}

struct PurgeDone {
    ran: Option<Ran>,
    attempts: u64,
    /// What the attempts before it answered, by code.
    refusals: BTreeMap<String, u64>,
}

/// After `after`, asks for a purge run, alternating replicas, until one runs: `ABORTED`
/// while another run holds the lease (one whose replica was killed holds it until the
/// lease expires), unreachable while a replica is down.
async fn purge_worker(
    load: Load,
    pair: [Channel; 2],
    after: Duration,
) -> anyhow::Result<PurgeDone> {
    let run = grpc::method(RUN_PURGE)?;
    tokio::time::sleep(after).await;
    let mut done = PurgeDone {
        ran: None,
        attempts: 0,
        refusals: BTreeMap::new(),
    };
    let request = json!({"triggeredBy": "churn soak"});
    loop {
        let to = &pair[usize::try_from(done.attempts % 2)?];
        done.attempts += 1;
        match load.call("retention.run_purge", to, &run, &request).await {
            Ok(answer) => {
                let last = answer.last().context("a purge run without messages")?;
                done.ran = Some(Ran {
                    status: last["run"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
                return Ok(done);
            }
            Err(refusal) => *done.refusals.entry(refusal.label()).or_default() += 1,
        }
        if load.given_up() {
            return Ok(done);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// === the checks ===

/// The acknowledged consent writes not in the ledger as acknowledged (sequence, subject,
/// kind, purpose), and sequences acknowledged twice.
async fn consent_lost(suite: &Suite, writes: &[ConsentWrite]) -> anyhow::Result<Vec<String>> {
    let rows = suite
        .pdm
        .backend()
        .rows(
            &suite.pdm.data_dir(),
            "consent",
            "consent_events",
            &["seq", "subject_id", "kind", "purpose"],
        )
        .await?;
    let mut ledger = BTreeMap::new();
    for row in rows {
        ledger.insert(row[0].parse::<i64>()?, row);
    }
    let mut lost = Vec::new();
    let mut seen = BTreeMap::new();
    for write in writes {
        if let Some(before) = seen.insert(write.sequence, write) {
            lost.push(format!(
                "sequence {} acknowledged twice: {before:?} and {write:?}",
                write.sequence
            ));
        }
        match ledger.get(&write.sequence) {
            Some(row) if row[1] == write.subject && row[2] == write.kind && row[3] == PURPOSE => {}
            found => lost.push(format!(
                "{write:?} acknowledged; the ledger holds at that sequence {found:?}"
            )),
        }
    }
    Ok(lost)
}

struct Events {
    lost: u64,
    duplicated: u64,
    problems: Vec<String>,
}

/// Every subject's events as telemetry exports them against what its acknowledged
/// batches accepted (and the ones `person_with_data` sent).
async fn events_stored(
    suite: &Suite,
    subjects: &[String],
    batches: &[Batch],
) -> anyhow::Result<Events> {
    let channel = suite.pdm.channel("telemetry", Caller::Service("rights"))?;
    let mut events = Events {
        lost: 0,
        duplicated: 0,
        problems: Vec::new(),
    };
    for subject in subjects {
        let of: Vec<&Batch> = batches.iter().filter(|b| &b.subject == subject).collect();
        let expected = EVENTS_AT_SIGN_UP + of.iter().map(|b| b.accepted).sum::<u64>();
        let stored = checks::count_events(&channel, subject).await?;
        if stored < expected {
            events.lost += expected - stored;
            events.problems.push(format!(
                "LOST events of subject {subject}: {stored} stored, {expected} acknowledged in \
                 {} batches",
                of.len()
            ));
        } else if stored > expected {
            events.duplicated += stored - expected;
            events.problems.push(format!(
                "events of subject {subject} stored more than once: {stored} stored, \
                 {expected} acknowledged in {} batches",
                of.len()
            ));
        }
    }
    Ok(events)
}

struct Settled {
    /// Requests in rights' table.
    rows: usize,
    took: Duration,
    /// Acknowledged requests not in the table.
    missing: Vec<String>,
    /// (request, where it stands) of those not completed in time.
    stuck: Vec<(String, String)>,
}

/// Waits until every request in rights' table is `COMPLETED`, at most [`COMPLETE_BOUND`]
/// after `since`; then names the acknowledged ones missing and those not completed.
async fn settle(suite: &Suite, acked: &[Submitted], since: Instant) -> anyhow::Result<Settled> {
    let (backend, dir) = (suite.pdm.backend(), suite.pdm.data_dir());
    loop {
        let rows = backend
            .rows(&dir, "rights", "requests", &["request_id", "status"])
            .await?;
        let open: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] != "STATUS_COMPLETED").collect();
        if open.is_empty() || since.elapsed() > COMPLETE_BOUND {
            let missing = acked
                .iter()
                .filter(|a| !rows.iter().any(|r| r[0] == a.id))
                .map(|a| a.id.clone())
                .collect();
            let tasks = backend
                .rows(
                    &dir,
                    "rights",
                    "tasks",
                    &[
                        "request_id",
                        "service",
                        "action",
                        "status",
                        "attempts",
                        "last_error",
                    ],
                )
                .await?;
            let stuck = open
                .iter()
                .map(|r| {
                    let of: Vec<String> = tasks
                        .iter()
                        .filter(|t| t[0] == r[0])
                        .map(|t| {
                            format!(
                                "{} {} {} after {} attempts {:?}",
                                t[1], t[2], t[3], t[4], t[5]
                            )
                        })
                        .collect();
                    (r[0].clone(), format!("{}; tasks: {}", r[1], of.join(", ")))
                })
                .collect();
            return Ok(Settled {
                rows: rows.len(),
                took: since.elapsed(),
                missing,
                stuck,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
