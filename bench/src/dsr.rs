//! `rights.throughput`: data-subject requests completed per second end to end, on SQLite
//! and on PostgreSQL (a fresh database, dropped at the end). Subjects hold data in
//! identity (the account), consent (a grant) and telemetry (usage events); transfers and
//! consent answer every request too. ACCESS then ERASURE requests, one per subject, are
//! submitted by the privacy team vouching for them (an operator reference), [`IN_FLIGHT`]
//! at a time; the rate runs from the first submission until none is in progress. ACCESS
//! with the subject's password is measured apart: argon2 bounds it on 2 cores.
//!
//! `rights.burst`: 4,000 vouched access requests (20 for each of 200 subjects) submitted
//! at once, faster than the worker completes them, so thousands of tasks wait in the queue
//! and the history grows while it drains; its rate against 200 requests' in the same run
//! says whether a request costs more when many wait.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use pdm_proto::{
    rights::v1::{
        self as pb, Credential, Regime, RequestKind, Status, credential,
        rights_service_client::RightsServiceClient,
    },
    telemetry::v1::{IngestEventsRequest, telemetry_service_client::TelemetryServiceClient},
};
use pdm_testkit::Mesh;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{
    figures::{round1, round3},
    harness,
    postgres::{self, BenchDatabase},
    telemetry,
};

/// Requests of each kind (one subject each).
const REQUESTS: usize = 200;
/// Requests submitted at once.
const IN_FLIGHT: usize = 16;
/// Usage events each subject holds.
const EVENTS: usize = 20;
/// The services running: every data-holding service and rights.
const SERVICES: [&str; 5] = ["identity", "consent", "telemetry", "transfers", "rights"];
/// Targets from the issue (requests completed per second, privacy team vouching).
const TARGET_SQLITE: f64 = 500.0;
const TARGET_POSTGRES: f64 = 300.0;
/// Longest a batch of requests may take before the benchmark gives up.
const WITHIN: Duration = Duration::from_secs(300);
/// `rights.burst`: access requests for each of 200 subjects, submitted as one burst, so
/// the queue grows to thousands of tasks while the worker drains it.
const BURST_PER_SUBJECT: usize = 20;

/// Runs the benchmark on both databases (PostgreSQL reported skipped when unreachable).
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    let phases = Phases {
        throughput: wanted("rights.throughput"),
        burst: wanted("rights.burst"),
    };
    if !phases.throughput && !phases.burst {
        return Ok(Vec::new());
    }
    let mut rows = on("sqlite", TARGET_SQLITE, Vec::new(), phases).await?;
    match BenchDatabase::create().await {
        Ok(database) => {
            let measured = on(
                "postgresql",
                TARGET_POSTGRES,
                vec![("database.url".to_owned(), database.url().to_owned())],
                phases,
            )
            .await;
            if let Err(e) = database.drop().await {
                eprintln!("warning: could not drop the benchmark database: {e}");
            }
            rows.extend(measured?);
        }
        Err(e) => rows.push(json!({
            "name": "rights.throughput.postgresql",
            "skipped": format!("PostgreSQL is not reachable at {}: {e}", postgres::server()),
        })),
    }
    Ok(rows)
}

/// Which parts of the benchmark run.
#[derive(Debug, Clone, Copy)]
struct Phases {
    /// `rights.throughput`: 200 requests of each kind.
    throughput: bool,
    /// `rights.burst`: a burst of access requests that queues thousands of tasks.
    burst: bool,
}

async fn on(
    database: &str,
    target: f64,
    mut settings: Vec<(String, String)>,
    phases: Phases,
) -> anyhow::Result<Vec<Value>> {
    let outbox =
        std::env::temp_dir().join(format!("pdm-bench-outbox-{}.jsonl", harness::uuid_like()));
    settings.extend([
        ("rights.retention".to_owned(), "false".to_owned()),
        (
            "rights.outbox_file".to_owned(),
            outbox.display().to_string(),
        ),
    ]);
    let mesh = harness::start(&SERVICES, settings).await?;
    let measured = measure(&mesh, database, target, phases).await;
    harness::stop(mesh).await;
    let _ = std::fs::remove_file(&outbox);
    measured
}

async fn measure(
    mesh: &Mesh,
    database: &str,
    target: f64,
    phases: Phases,
) -> anyhow::Result<Vec<Value>> {
    let subjects = telemetry::consenting(mesh, REQUESTS * 2).await?;
    let mut telemetry_client = TelemetryServiceClient::new(mesh.channel("telemetry"));
    let at = pdm_runtime::convert::timestamp(chrono::Utc::now());
    for subject in &subjects {
        let answer = telemetry_client
            .ingest_events(IngestEventsRequest {
                batch_id: format!("dsr-{subject}"),
                events: (0..EVENTS)
                    .map(|i| telemetry::event(subject, "", i, &at))
                    .collect(),
            })
            .await?
            .into_inner();
        anyhow::ensure!(answer.accepted as usize == EVENTS, "events not stored");
    }
    let team =
        RightsServiceClient::new(mesh.channel_as("rights", &pdm_tls::identity::Caller::Admin)?);
    let company = RightsServiceClient::new(mesh.channel("rights"));
    let vouched = || Credential {
        credential: Some(credential::Credential::OperatorReference(
            "bench: identity documents checked".into(),
        )),
    };
    let password = harness::sample_account().password;
    let by_password = || Credential {
        credential: Some(credential::Credential::Password(password.clone())),
    };
    let (vouched_subjects, password_subjects) = subjects.split_at(REQUESTS);
    let mut rows = Vec::new();
    let mut access_rate = None;
    if phases.throughput {
        for (kind, label) in [
            (RequestKind::Access, "access"),
            (RequestKind::Erasure, "erasure"),
        ] {
            let name = format!("rights.throughput.{database}.{label}");
            // On stderr, so a profiler can be started on the phase itself (docs/scale.md).
            eprintln!("pdm-bench: {name}: started");
            let rate = batch(&team, &team, kind, vouched_subjects, &vouched).await?;
            eprintln!("pdm-bench: {name}: done");
            if kind == RequestKind::Access {
                access_rate = Some(rate.per_second());
            }
            rows.push(rate.to_json(&name, "privacy team vouching", Some(target)));
        }
        let rate = batch(
            &team,
            &company,
            RequestKind::Access,
            password_subjects,
            &by_password,
        )
        .await?;
        rows.push(rate.to_json(
            &format!("rights.throughput.{database}.access_password"),
            "the subject's password (argon2 on every request)",
            None,
        ));
    }
    if phases.burst {
        // The baseline the burst is compared with, measured in the same run: the 200
        // vouched access requests above, or measured now when they did not run.
        let access = match access_rate {
            Some(rate) => rate,
            None => batch(
                &team,
                &team,
                RequestKind::Access,
                vouched_subjects,
                &vouched,
            )
            .await?
            .per_second(),
        };
        // The password phase's subjects: never erased (the vouched ones may be).
        let burst: Vec<String> = (0..BURST_PER_SUBJECT)
            .flat_map(|_| password_subjects.iter().cloned())
            .collect();
        let name = format!("rights.burst.{database}.access");
        eprintln!("pdm-bench: {name}: started");
        let rate = batch(&team, &team, RequestKind::Access, &burst, &vouched).await?;
        eprintln!("pdm-bench: {name}: done");
        let mut row = rate.to_json(&name, "privacy team vouching", None);
        row["requests_per_subject"] = json!(BURST_PER_SUBJECT);
        row["ratio_vs_200_requests"] = json!(round3(rate.per_second() / access));
        row["note"] = json!(
            "from the first SubmitRequest until no request is in progress; submitted faster \
             than completed, so the queue holds thousands of tasks while the worker drains it"
        );
        rows.push(row);
    }
    Ok(rows)
}

/// How a batch went.
struct Rate {
    requests: usize,
    tasks: usize,
    submitted: Duration,
    completed: Duration,
}

impl Rate {
    /// Requests completed per second.
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.completed.as_secs_f64()
    }

    fn to_json(&self, name: &str, verified_by: &str, target: Option<f64>) -> Value {
        let per_second = self.per_second();
        json!({
            "name": name,
            "requests": self.requests,
            "tasks": self.tasks,
            "in_flight": IN_FLIGHT,
            "verified_by": verified_by,
            "completed_per_second": round1(per_second),
            "submitted_per_second": round1(self.requests as f64 / self.submitted.as_secs_f64()),
            "target_per_second": target,
            "meets_target": target.map(|t| per_second >= t),
            "note": "from the first SubmitRequest until no request is in progress",
        })
    }
}

/// Submits a `kind` request for each subject through `submitter`, then waits until the
/// privacy team (`team`) sees none in progress.
async fn batch(
    team: &RightsServiceClient<Channel>,
    submitter: &RightsServiceClient<Channel>,
    kind: RequestKind,
    subjects: &[String],
    credential: &dyn Fn() -> Credential,
) -> anyhow::Result<Rate> {
    let before = count(team, Status::Completed, kind).await?;
    let started = Instant::now();
    let submitted: Vec<pb::DataSubjectRequest> = stream::iter(subjects)
        .map(|subject| {
            let mut client = submitter.clone();
            let request = pb::SubmitRequestRequest {
                kind: kind as i32,
                regime: Regime::Gdpr as i32,
                subject_id: subject.clone(),
                credential: Some(credential()),
                ..Default::default()
            };
            async move {
                client
                    .submit_request(request)
                    .await?
                    .into_inner()
                    .request
                    .context("SubmitRequest answered no request")
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let submitted_in = started.elapsed();
    loop {
        if !any(team, Status::InProgress, kind).await? {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < WITHIN,
            "{kind:?} requests still in progress after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let completed_in = started.elapsed();
    let done = count(team, Status::Completed, kind).await? - before;
    anyhow::ensure!(
        done == subjects.len(),
        "{done} of {} {kind:?} requests completed",
        subjects.len()
    );
    Ok(Rate {
        requests: subjects.len(),
        tasks: submitted.iter().map(|r| r.tasks.len()).sum(),
        submitted: submitted_in,
        completed: completed_in,
    })
}

/// Whether a request of `kind` is in `status`: one row asked, so polling it costs the
/// service little beside the work measured.
async fn any(
    client: &RightsServiceClient<Channel>,
    status: Status,
    kind: RequestKind,
) -> anyhow::Result<bool> {
    let page = client
        .clone()
        .list_requests(pb::ListRequestsRequest {
            status: status as i32,
            kind: kind as i32,
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(!page.requests.is_empty())
}

/// Requests of `kind` in `status`, counted over every page.
async fn count(
    client: &RightsServiceClient<Channel>,
    status: Status,
    kind: RequestKind,
) -> anyhow::Result<usize> {
    let mut client = client.clone();
    let mut page_token = String::new();
    let mut n = 0;
    loop {
        let page = client
            .list_requests(pb::ListRequestsRequest {
                status: status as i32,
                kind: kind as i32,
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        n += page.requests.len();
        if page.next_page_token.is_empty() {
            return Ok(n);
        }
        page_token = page.next_page_token;
    }
}
