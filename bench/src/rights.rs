//! Rights benchmarks, on PostgreSQL (a fresh database, dropped at the end), with identity,
//! consent, telemetry, transfers and rights running (retention left out):
//!
//! - `rights.erasure`: the time from SubmitRequest (ERASURE under the GDPR, verified by the
//!   account password) to COMPLETED, every service having erased the subject, for subjects
//!   with 100,000 telemetry events against subjects with 100. Erasure must be flat in
//!   volume: at most 2×.
//! - `rights.access`: the same for ACCESS, then DownloadExport streamed to its end, against
//!   `COPY (SELECT …) TO STDOUT` of the same rows (the columns the telemetry export reads)
//!   in the same run. The package must stream at least half as fast as the database hands
//!   out the rows.
//!
//! Events go in through IngestEvents (realistic rows, sealed with the subject's key), a
//! batch at a time; the package is counted as it streams, never held. A request's download
//! token is good for one complete download, so the repeated downloads are made as the
//! privacy team, who need none: the same package streamed by the same code.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use pdm_proto::{
    rights::v1::{
        self as pb, Credential, Regime, RequestKind, Status, credential,
        rights_service_client::RightsServiceClient,
    },
    subject::v1::{ExportSubjectRequest, subject_data_service_client::SubjectDataServiceClient},
    telemetry::v1::{IngestEventsRequest, telemetry_service_client::TelemetryServiceClient},
};
use pdm_runtime::sea_orm::sqlx;
use pdm_testkit::Mesh;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::figures::{median, ms, round1, round3};
use super::{
    harness,
    postgres::{self, BenchDatabase},
    telemetry,
};

/// Events of the large and of the small subjects.
const BIG: usize = 100_000;
const SMALL: usize = 100;
/// Events per IngestEvents call while loading, and calls in flight.
const BATCH: usize = 500;
const STREAMS: usize = 4;
/// Subjects erased per volume (medians are compared; one more small one warms up).
const ERASE_BIG: usize = 3;
const ERASE_SMALL: usize = 3;
/// Downloads (and COPYs) per access request; medians are reported.
const DOWNLOADS: usize = 3;
/// Targets from the issue.
const ERASE_RATIO_TARGET: f64 = 2.0;
const STREAM_RATIO_TARGET: f64 = 0.5;
/// The services running: every data-holding service and rights.
const SERVICES: [&str; 5] = ["identity", "consent", "telemetry", "transfers", "rights"];
/// How often GetRequest is polled while waiting for a request to complete.
const POLL: Duration = Duration::from_millis(5);
/// What the telemetry export reads of each event.
const EXPORT_COLUMNS: &str = "event_id, kind, occurred_at, payload, sealed";

/// Runs the rights benchmarks, or reports them skipped when PostgreSQL is unreachable.
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    let erasure = wanted("rights.erasure");
    let access = wanted("rights.access");
    if !erasure && !access {
        return Ok(Vec::new());
    }
    let database = match BenchDatabase::create().await {
        Ok(database) => database,
        Err(e) => {
            return Ok(vec![json!({
                "name": "rights",
                "skipped": format!("PostgreSQL is not reachable at {}: {e}", postgres::server()),
            })]);
        }
    };
    let outbox =
        std::env::temp_dir().join(format!("pdm-bench-outbox-{}.jsonl", harness::uuid_like()));
    let measured = measure(&database, &outbox, erasure, access).await;
    let _ = std::fs::remove_file(&outbox);
    if let Err(e) = database.drop().await {
        eprintln!("warning: could not drop the benchmark database: {e}");
    }
    measured
}

async fn measure(
    database: &BenchDatabase,
    outbox: &std::path::Path,
    erasure: bool,
    access: bool,
) -> anyhow::Result<Vec<Value>> {
    let mesh = harness::start(
        &SERVICES,
        vec![
            ("database.url".to_owned(), database.url().to_owned()),
            ("rights.retention".to_owned(), "false".to_owned()),
            (
                "rights.outbox_file".to_owned(),
                outbox.display().to_string(),
            ),
        ],
    )
    .await?;
    let pool = database.connect(2).await?;
    let result = async {
        let bench = Bench {
            mesh: &mesh,
            rights: RightsServiceClient::new(mesh.channel("rights")),
            team: RightsServiceClient::new(
                mesh.channel_as("rights", &pdm_tls::identity::Caller::Admin)?,
            ),
            telemetry: TelemetryServiceClient::new(mesh.channel("telemetry")),
            pool: pool.get_postgres_connection_pool().clone(),
            password: harness::sample_account().password,
        };
        let mut rows = Vec::new();
        if access {
            rows.extend(bench.access().await?);
        }
        if erasure {
            rows.push(bench.erasure().await?);
        }
        anyhow::Ok(rows)
    }
    .await;
    pool.close().await.ok();
    harness::stop(mesh).await;
    result
}

/// The running mesh and what the measurements call.
struct Bench<'a> {
    mesh: &'a Mesh,
    rights: RightsServiceClient<Channel>,
    /// The privacy team's client (downloads without the one-time token).
    team: RightsServiceClient<Channel>,
    telemetry: TelemetryServiceClient<Channel>,
    pool: sqlx::PgPool,
    /// Every benchmark account's password.
    password: String,
}

/// A request from submission to completion.
struct Completed {
    request_id: String,
    /// SubmitRequest to COMPLETED, as the caller saw it (polled every [`POLL`]).
    total: Duration,
    /// The SubmitRequest call alone (verification, planning, storing the tasks).
    submit: Duration,
    /// `closed_at - received_at` as the rights service recorded them.
    recorded: Option<Duration>,
    /// Task attempts (one per task when nothing was retried).
    attempts: i64,
    tasks: usize,
}

/// A package, streamed to its end.
struct Downloaded {
    elapsed: Duration,
    first_byte: Duration,
    bytes: u64,
    /// Records, from the package's summary.
    records: u64,
    /// Of which telemetry's.
    telemetry_records: u64,
    /// Records counted in the stream (one line each).
    lines: u64,
}

/// The rows of a COPY TO.
struct Copied {
    elapsed: Duration,
    bytes: u64,
    rows: u64,
}

impl Bench<'_> {
    /// Signs up `volumes.len()` subjects who agreed to analytics and gives each its events.
    async fn subjects(&self, volumes: &[usize]) -> anyhow::Result<Vec<String>> {
        let subjects = telemetry::consenting(self.mesh, volumes.len()).await?;
        for (subject, events) in subjects.iter().zip(volumes) {
            self.ingest(subject, *events).await?;
        }
        Ok(subjects)
    }

    /// Sends `events` events of `subject` through IngestEvents, [`BATCH`] a call, built a
    /// batch at a time.
    async fn ingest(&self, subject: &str, events: usize) -> anyhow::Result<()> {
        let at = pdm_runtime::convert::timestamp(chrono::Utc::now());
        let mut senders = tokio::task::JoinSet::new();
        let mut next = 0;
        loop {
            while senders.len() < STREAMS && next < events {
                let end = (next + BATCH).min(events);
                let request = IngestEventsRequest {
                    batch_id: format!("rights-{subject}-{next}"),
                    events: (next..end)
                        .map(|i| telemetry::event(subject, "", i, &at))
                        .collect(),
                };
                let expected = end - next;
                let mut client = self.telemetry.clone();
                senders.spawn(async move { (expected, client.ingest_events(request).await) });
                next = end;
            }
            let Some(sent) = senders.join_next().await else {
                return Ok(());
            };
            let (expected, answer) = sent?;
            let answer = answer?.into_inner();
            anyhow::ensure!(
                answer.accepted as usize == expected && answer.dropped.is_empty(),
                "events not stored: {answer:?}"
            );
        }
    }

    /// Submits a request for `subject` with its password and polls until it completes.
    async fn complete(
        &self,
        kind: RequestKind,
        subject: &str,
        within: Duration,
    ) -> anyhow::Result<Completed> {
        let mut rights = self.rights.clone();
        let started = Instant::now();
        let mut request = rights
            .submit_request(pb::SubmitRequestRequest {
                kind: kind as i32,
                regime: Regime::Gdpr as i32,
                subject_id: subject.to_owned(),
                credential: Some(Credential {
                    credential: Some(credential::Credential::Password(self.password.clone())),
                }),
                ..Default::default()
            })
            .await?
            .into_inner()
            .request
            .context("SubmitRequest answered no request")?;
        let submit = started.elapsed();
        let request_id = request.request_id.clone();
        loop {
            match Status::try_from(request.status).unwrap_or_default() {
                Status::Completed => break,
                Status::InProgress => {}
                other => anyhow::bail!(
                    "{kind:?} request {request_id} is {other:?}: {}",
                    request.outcome_reason
                ),
            }
            if started.elapsed() > within {
                anyhow::bail!(
                    "{kind:?} request {request_id} not completed within {within:?}: {:?}",
                    request.tasks
                );
            }
            tokio::time::sleep(POLL).await;
            request = rights
                .get_request(pb::GetRequestRequest {
                    request_id: request_id.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .request
                .context("GetRequest answered no request")?;
        }
        let total = started.elapsed();
        let at =
            |t: Option<&prost_types::Timestamp>| t.and_then(pdm_runtime::convert::from_timestamp);
        let recorded = match (
            at(request.received_at.as_ref()),
            at(request.closed_at.as_ref()),
        ) {
            (Some(received), Some(closed)) => (closed - received).to_std().ok(),
            _ => None,
        };
        Ok(Completed {
            request_id,
            total,
            submit,
            recorded,
            attempts: request.tasks.iter().map(|t| i64::from(t.attempts)).sum(),
            tasks: request.tasks.len(),
        })
    }

    /// Streams a package to its end, counting bytes and records.
    async fn download(&self, done: &Completed) -> anyhow::Result<Downloaded> {
        let mut team = self.team.clone();
        let started = Instant::now();
        let mut stream = team
            .download_export(pb::DownloadExportRequest {
                request_id: done.request_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut first_byte = None;
        let mut bytes = 0u64;
        let mut newlines = 0u64;
        let mut last = Vec::new();
        while let Some(piece) = stream.message().await? {
            first_byte.get_or_insert_with(|| started.elapsed());
            bytes += piece.chunk.len() as u64;
            newlines += lines(&piece.chunk);
            last = piece.chunk;
        }
        let elapsed = started.elapsed();
        let (records, telemetry_records) = package_counts(&last)?;
        Ok(Downloaded {
            elapsed,
            first_byte: first_byte.unwrap_or(elapsed),
            bytes,
            records,
            telemetry_records,
            // The head ends with `[\n`, records are joined by `,\n`, the tail is
            // `\n],"summary":…}\n`: one line per record and two more.
            lines: newlines.saturating_sub(2),
        })
    }

    /// `COPY (SELECT <what the export reads> … WHERE subject_id = …) TO STDOUT`, streamed
    /// and counted like the package.
    async fn copy_out(&self, subject: &str) -> anyhow::Result<Copied> {
        anyhow::ensure!(
            subject
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "unexpected subject id {subject:?}"
        );
        let mut conn = self.pool.acquire().await?;
        let started = Instant::now();
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY (SELECT {EXPORT_COLUMNS} FROM telemetry.events \
                 WHERE subject_id = '{subject}' ORDER BY event_id) TO STDOUT"
            ))
            .await?;
        let mut bytes = 0u64;
        let mut rows = 0u64;
        while let Some(chunk) = out.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            rows += lines(&chunk);
        }
        Ok(Copied {
            elapsed: started.elapsed(),
            bytes,
            rows,
        })
    }

    /// Telemetry's ExportSubject alone, read to its end as the rights worker reads it:
    /// the share of an access request's completion that is the service's own stream.
    async fn export_alone(&self, subject: &str) -> anyhow::Result<(Duration, u64)> {
        let mut client = SubjectDataServiceClient::new(self.mesh.channel("telemetry"))
            .max_decoding_message_size(usize::MAX);
        let started = Instant::now();
        let mut stream = client
            .export_subject(ExportSubjectRequest {
                subject_id: subject.to_owned(),
                request_id: format!("bench-{}", harness::uuid_like()),
            })
            .await?
            .into_inner();
        let mut records = 0u64;
        while stream.message().await?.is_some() {
            records += 1;
        }
        Ok((started.elapsed(), records))
    }

    /// Telemetry rows of `subject` still stored.
    async fn telemetry_rows(&self, subject: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM telemetry.events WHERE subject_id = $1")
                .bind(subject)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    // === rights.access ===

    async fn access(&self) -> anyhow::Result<Vec<Value>> {
        let subjects = self.subjects(&[SMALL, SMALL, BIG]).await?;
        // The first request warms the path up (statements, chunk tables) and is not counted.
        let warm = self
            .complete(RequestKind::Access, &subjects[0], Duration::from_secs(120))
            .await?;
        self.download(&warm).await?;
        self.copy_out(&subjects[0]).await?;

        let mut rows = Vec::new();
        let mut small_complete = None;
        for (subject, events) in [(&subjects[1], SMALL), (&subjects[2], BIG)] {
            let done = self
                .complete(RequestKind::Access, subject, Duration::from_secs(900))
                .await?;
            let mut downloads = Vec::new();
            let mut copies = Vec::new();
            for _ in 0..DOWNLOADS {
                downloads.push(self.download(&done).await?);
                copies.push(self.copy_out(subject).await?);
            }
            let mut row = access_row(events, &done, &downloads, &copies);
            let (export, exported) = self.export_alone(subject).await?;
            row["telemetry_export_alone_ms"] = json!(round1(ms(export)));
            row["telemetry_export_alone_records"] = json!(exported);
            if events == SMALL {
                small_complete = Some(done.total);
                row["note"] = json!(
                    "latency-bound at this size (a few round trips against one COPY); \
                     the target applies to the 100,000-event subject"
                );
            } else {
                let ratio = row["ratio_package_vs_copy"].as_f64().unwrap_or(0.0);
                row["target_at_least"] = json!(STREAM_RATIO_TARGET);
                row["met"] = json!(ratio >= STREAM_RATIO_TARGET);
                if let Some(small) = small_complete {
                    row["complete_ratio_vs_100"] =
                        json!(round3(ms(done.total) / ms(small).max(f64::EPSILON)));
                }
            }
            rows.push(row);
        }
        Ok(rows)
    }

    // === rights.erasure ===

    async fn erasure(&self) -> anyhow::Result<Value> {
        let mut volumes = vec![SMALL; 1 + ERASE_SMALL];
        volumes.extend([BIG; ERASE_BIG]);
        let subjects = self.subjects(&volumes).await?;
        let (warm, rest) = subjects.split_first().context("no subjects")?;
        let (smalls, bigs) = rest.split_at(ERASE_SMALL);

        // Telemetry deletes the rows in the background once the key is gone; the next
        // erasure starts when they are, so one's deletion does not weigh on the next.
        let erase = async |subject: &str| -> anyhow::Result<(Completed, Duration)> {
            let started = Instant::now();
            let done = self
                .complete(RequestKind::Erasure, subject, Duration::from_secs(300))
                .await?;
            for _ in 0..6000 {
                if self.telemetry_rows(subject).await? == 0 {
                    return Ok((done, started.elapsed()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::bail!("telemetry rows were not deleted within two minutes")
        };
        erase(warm).await?;
        // Small and large alternate, so whatever the large deletions leave behind
        // (autovacuum, WAL) weighs on both.
        let mut small = Vec::new();
        let mut big = Vec::new();
        for (s, b) in smalls.iter().zip(bigs) {
            small.push(erase(s).await?);
            big.push(erase(b).await?);
        }
        let series = |runs: &[(Completed, Duration)], f: &dyn Fn(&(Completed, Duration)) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(f).collect();
            let all = values.iter().map(|v| round1(*v)).collect::<Vec<_>>();
            (median(&mut values), all)
        };
        let total = |r: &(Completed, Duration)| ms(r.0.total);
        let recorded = |r: &(Completed, Duration)| r.0.recorded.map_or(f64::NAN, ms);
        let submit = |r: &(Completed, Duration)| ms(r.0.submit);
        let gone = |r: &(Completed, Duration)| ms(r.1);
        let (small_ms, small_all) = series(&small, &total);
        let (big_ms, big_all) = series(&big, &total);
        let (small_recorded, _) = series(&small, &recorded);
        let (big_recorded, _) = series(&big, &recorded);
        let (small_submit, _) = series(&small, &submit);
        let (big_submit, _) = series(&big, &submit);
        let (small_gone, _) = series(&small, &gone);
        let (big_gone, _) = series(&big, &gone);
        let ratio = round3(big_ms / small_ms.max(f64::EPSILON));
        let after_submit = round3((big_ms - big_submit) / (small_ms - small_submit).max(0.001));
        let attempts: i64 = small.iter().chain(&big).map(|r| r.0.attempts).sum();
        let tasks: usize = small.iter().chain(&big).map(|r| r.0.tasks).sum();
        Ok(json!({
            "name": "rights.erasure",
            "database": "postgresql",
            "services": SERVICES,
            "regime": "REGIME_GDPR",
            "credential": "password",
            "big_subject_events": BIG,
            "small_subject_events": SMALL,
            "subjects_per_volume": ERASE_BIG,
            "complete_ms_100k_median": round1(big_ms),
            "complete_ms_100k": big_all,
            "complete_ms_100_median": round1(small_ms),
            "complete_ms_100": small_all,
            "recorded_ms_100k_median": round1(big_recorded),
            "recorded_ms_100_median": round1(small_recorded),
            "submit_ms_100k_median": round1(big_submit),
            "submit_ms_100_median": round1(small_submit),
            "telemetry_rows_gone_ms_100k_median": round1(big_gone),
            "telemetry_rows_gone_ms_100_median": round1(small_gone),
            "task_attempts": attempts,
            "tasks": tasks,
            "poll_interval_ms": ms(POLL),
            "what": "SubmitRequest to COMPLETED as the caller sees it (GetRequest polled); \
                     recorded = closed_at - received_at in the rights service; submit = the \
                     SubmitRequest call (password check included); rows gone = until \
                     telemetry's background deletion of the rows ends",
            "ratio_100k_vs_100": ratio,
            "ratio_100k_vs_100_after_submit": after_submit,
            "target_at_most": ERASE_RATIO_TARGET,
            "met": ratio <= ERASE_RATIO_TARGET,
        }))
    }
}

/// The JSON row of an access request for a subject with `events` events.
fn access_row(
    events: usize,
    done: &Completed,
    downloads: &[Downloaded],
    copies: &[Copied],
) -> Value {
    let mut download_ms: Vec<f64> = downloads.iter().map(|d| ms(d.elapsed)).collect();
    let mut first_byte_ms: Vec<f64> = downloads.iter().map(|d| ms(d.first_byte)).collect();
    let mut copy_ms: Vec<f64> = copies.iter().map(|c| ms(c.elapsed)).collect();
    let download_all: Vec<f64> = download_ms.iter().map(|v| round1(*v)).collect();
    let copy_all: Vec<f64> = copy_ms.iter().map(|v| round1(*v)).collect();
    let download = median(&mut download_ms) / 1000.0;
    let copy = median(&mut copy_ms) / 1000.0;
    let package = downloads.last();
    let bytes = package.map_or(0, |d| d.bytes) as f64;
    let records = package.map_or(0, |d| d.records) as f64;
    let copy_bytes = copies.last().map_or(0, |c| c.bytes) as f64;
    let copy_rows = copies.last().map_or(0, |c| c.rows) as f64;
    let per_s = |n: f64, s: f64| n / s.max(f64::EPSILON);
    let package_bps = per_s(bytes, download);
    let copy_bps = per_s(copy_bytes, copy);
    let package_rps = per_s(records, download);
    let copy_rps = per_s(copy_rows, copy);
    let end_to_end_rps = per_s(records, done.total.as_secs_f64() + download);
    json!({
        "name": "rights.access",
        "database": "postgresql",
        "services": SERVICES,
        "subject_events": events,
        "complete_ms": round1(ms(done.total)),
        "recorded_ms": done.recorded.map(|d| round1(ms(d))),
        "submit_ms": round1(ms(done.submit)),
        "task_attempts": done.attempts,
        "tasks": done.tasks,
        "download_ms_median": round1(download * 1000.0),
        "download_ms": download_all,
        "first_byte_ms_median": round1(median(&mut first_byte_ms)),
        "package_bytes": bytes,
        "package_records": records,
        "package_telemetry_records": package.map_or(0, |d| d.telemetry_records),
        "package_records_counted_in_stream": package.map_or(0, |d| d.lines),
        "package_mb_per_s": round1(package_bps / 1e6),
        "package_records_per_s": package_rps.round(),
        "copy_ms_median": round1(copy * 1000.0),
        "copy_ms": copy_all,
        "copy_bytes": copy_bytes,
        "copy_rows": copy_rows,
        "copy_mb_per_s": round1(copy_bps / 1e6),
        "copy_rows_per_s": copy_rps.round(),
        "copy_what": format!(
            "COPY (SELECT {EXPORT_COLUMNS} FROM telemetry.events WHERE subject_id = … \
             ORDER BY event_id) TO STDOUT, text format, from the same database in the same \
             run: the rows and columns the telemetry export reads"
        ),
        "ratio_package_vs_copy": round3(package_bps / copy_bps.max(f64::EPSILON)),
        "ratio_records_vs_rows": round3(package_rps / copy_rps.max(f64::EPSILON)),
        "ratio_records_vs_rows_with_completion": round3(end_to_end_rps / copy_rps.max(f64::EPSILON)),
    })
}

/// Records in the package and telemetry's share, from the summary at its end (the last
/// piece of the stream: `\n],"summary":{…},"human_readable":"…"}\n`).
fn package_counts(last: &[u8]) -> anyhow::Result<(u64, u64)> {
    const MARK: &[u8] = b"\n],\"summary\":";
    let at = last
        .windows(MARK.len())
        .position(|w| w == MARK)
        .context("the package does not end with its summary")?;
    let mut end = b"{".to_vec();
    end.extend_from_slice(&last[at + 3..]);
    let end: Value = serde_json::from_slice(&end).context("the package's end is not JSON")?;
    let services = end["summary"]["what_data"]
        .as_array()
        .context("the summary has no what_data")?;
    let records = |s: &Value| s["records"].as_u64().unwrap_or(0);
    Ok((
        services.iter().map(records).sum(),
        services
            .iter()
            .filter(|s| s["service"] == "telemetry")
            .map(records)
            .sum(),
    ))
}

/// Newlines in `bytes`.
fn lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}
