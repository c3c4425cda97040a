//! How telemetry's cost grows with its data (issue 19, docs/scale.md), on PostgreSQL: the
//! events table is filled in steps (`PDM_BENCH_GROWTH_EVENTS`, a comma-separated list of
//! totals; default 200000,400000,800000), and at each step the same measurements are
//! taken:
//!
//! - ingestion events/s while filling up to the step (batches of 500, 4 streams, consent
//!   gate on, requests encoded once);
//! - ExportSubject wall time for a subject with 1,000 events (an access package's
//!   telemetry part), median of 5;
//! - EraseSubject wall time for a subject with 100 events, and the time until its rows
//!   are gone, median of 3;
//! - the events table's size on disk (table, indexes, TOAST) and bytes per event.
//!
//! Nothing is asserted: the curves are the result.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use pdm_proto::subject::v1::{
    EraseSubjectRequest, ExportSubjectRequest,
    subject_data_service_client::SubjectDataServiceClient,
};
use pdm_runtime::sea_orm::{DatabaseConnection, sqlx};
use pdm_testkit::Mesh;
use serde_json::{Value, json};

use super::{
    figures::{self, median, ms, round1, round3},
    harness, postgres,
    telemetry::{self, BATCH, STREAMS, wire},
};

/// Steps when `PDM_BENCH_GROWTH_EVENTS` is unset.
const DEFAULT_STEPS: [u64; 3] = [200_000, 400_000, 800_000];
/// Subjects the filling events are spread over.
const SUBJECTS: usize = 40;
/// Events of the exported subject, and of each erased one.
const EXPORTED: usize = 1000;
const ERASED: usize = 100;
/// Exports and erasures per step.
const EXPORTS: usize = 5;
const ERASURES: usize = 3;

/// Runs the growth measurements, or reports them skipped when PostgreSQL is unreachable.
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    if !wanted("scale.growth.telemetry") {
        return Ok(Vec::new());
    }
    let steps = figures::steps("PDM_BENCH_GROWTH_EVENTS", &DEFAULT_STEPS)?;
    postgres::on_fresh_database("scale.growth.telemetry", async |database| {
        let mesh = harness::start(
            &["identity", "consent", "telemetry"],
            vec![("database.url".to_owned(), database.url().to_owned())],
        )
        .await?;
        let pool = database.connect(2).await?;
        let rows = grow(&mesh, &pool, &steps).await;
        pool.close().await.ok();
        harness::stop(mesh).await;
        rows
    })
    .await
}

async fn grow(mesh: &Mesh, pool: &DatabaseConnection, steps: &[u64]) -> anyhow::Result<Vec<Value>> {
    let client = telemetry::telemetry_client(mesh);
    let subjects = telemetry::consenting(mesh, SUBJECTS).await?;
    // Probes: one subject to export, fresh ones to erase at each step.
    let probes = telemetry::consenting(mesh, 1 + ERASURES * steps.len()).await?;
    let (exported, erasable) = probes.split_at(1);
    telemetry::ingest_subject(&client, &exported[0], EXPORTED).await?;
    let templates: Arc<Vec<Vec<u8>>> = Arc::new(
        telemetry::batches(&subjects, 16)
            .iter()
            .map(|events| wire::events(events))
            .collect(),
    );
    let pg = pool.get_postgres_connection_pool().clone();
    let mut subject_data = SubjectDataServiceClient::new(mesh.channel("telemetry"));
    let sent = Arc::new(AtomicU64::new(0));
    let mut erasable = erasable.chunks(ERASURES);
    let mut rows = Vec::new();
    for &target in steps {
        let held = count(&pg).await?;
        let batches = target.saturating_sub(held).div_ceil(BATCH as u64);
        let started = Instant::now();
        fill(mesh, &templates, &sent, batches).await?;
        let fill_time = started.elapsed();
        let filled = batches * BATCH as u64;

        let mut export_ms = Vec::new();
        for _ in 0..EXPORTS {
            let started = Instant::now();
            let mut stream = subject_data
                .export_subject(ExportSubjectRequest {
                    subject_id: exported[0].clone(),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            let mut records = 0usize;
            while let Some(record) = stream.next().await {
                record?;
                records += 1;
            }
            anyhow::ensure!(records >= EXPORTED, "exported {records} records");
            export_ms.push(ms(started.elapsed()));
        }

        let mut erase_ms = Vec::new();
        let mut gone_ms = Vec::new();
        for subject in erasable.next().unwrap_or_default() {
            telemetry::ingest_subject(&client, subject, ERASED).await?;
            let started = Instant::now();
            subject_data
                .erase_subject(EraseSubjectRequest {
                    request_id: format!("growth-{subject}"),
                    subject_id: subject.clone(),
                })
                .await?;
            erase_ms.push(ms(started.elapsed()));
            wait_gone(&pg, subject).await?;
            gone_ms.push(ms(started.elapsed()));
        }

        let events = count(&pg).await?;
        let bytes: i64 = sqlx::query_scalar(
            // Partitioned (by day): the parent holds nothing itself.
            "SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0)::bigint \
                 FROM pg_partition_tree('telemetry.events')",
        )
        .fetch_one(&pg)
        .await?;
        let rate = filled as f64 / fill_time.as_secs_f64().max(f64::EPSILON);
        rows.push(json!({
            "name": "scale.growth.telemetry",
            "database": "postgresql",
            "events_held": events,
            "ingest_events_per_s": rate.round(),
            "ingested_in_step": filled,
            "export_1000_events_ms_median": round3(median(&mut export_ms)),
            "erase_100_events_ms_median": round3(median(&mut erase_ms)),
            "erase_rows_gone_ms_median": round1(median(&mut gone_ms)),
            "events_table_mib": round1(bytes as f64 / 1_048_576.0),
            "bytes_per_event": round1(bytes as f64 / (events.max(1) as f64)),
        }));
    }
    Ok(rows)
}

/// Sends `batches` pre-encoded batches over [`STREAMS`] streams; batch ids go on from
/// `sent`, so no batch repeats an earlier one (a repeat is not stored twice).
async fn fill(
    mesh: &Mesh,
    templates: &Arc<Vec<Vec<u8>>>,
    sent: &Arc<AtomicU64>,
    batches: u64,
) -> anyhow::Result<()> {
    let end = sent.load(Ordering::Relaxed) + batches;
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..STREAMS {
        let mut grpc = tonic::client::Grpc::new(mesh.channel("telemetry"));
        let templates = templates.clone();
        let sent = sent.clone();
        streams.spawn(async move {
            loop {
                let i = sent.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    sent.fetch_min(end, Ordering::Relaxed);
                    return anyhow::Ok(());
                }
                let slot = usize::try_from(i).unwrap_or(0) % templates.len();
                let request = wire::request(&format!("growth-{i}"), &templates[slot]);
                grpc.ready().await?;
                let answer = grpc
                    .unary(
                        tonic::Request::new(request),
                        tonic::codegen::http::uri::PathAndQuery::from_static(wire::INGEST_EVENTS),
                        wire::PreEncoded,
                    )
                    .await?
                    .into_inner();
                anyhow::ensure!(
                    answer.accepted as usize == BATCH,
                    "a batch was not accepted whole: {answer:?}"
                );
            }
        });
    }
    while let Some(done) = streams.join_next().await {
        done??;
    }
    Ok(())
}

async fn count(pg: &sqlx::PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM telemetry.events")
        .fetch_one(pg)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Waits until the erased subject's rows are gone (they go in the background).
async fn wait_gone(pg: &sqlx::PgPool, subject: &str) -> anyhow::Result<()> {
    for _ in 0..1200 {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM telemetry.events WHERE subject_id = $1")
                .bind(subject)
                .fetch_one(pg)
                .await?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("background deletion did not finish within a minute")
}
