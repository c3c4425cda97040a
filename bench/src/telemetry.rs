//! Telemetry benchmarks, on PostgreSQL (a fresh database, dropped at the end):
//!
//! - events/s through IngestEvents (batches of 500, 4 concurrent streams, consent gate on:
//!   every event belongs to a subject who agreed to product analytics; requests encoded
//!   once, so the in-process load generator's cost is not counted);
//! - events/s for the same rows written straight to PostgreSQL with COPY in binary format,
//!   as the service writes them (500 per transaction, 4 streams) into an unpartitioned table of the same columns and indexes,
//!   in the same run: the ratio of the two is the service's cost over the database's own;
//! - EraseSubject wall time for a subject with 100,000 events against subjects with 100
//!   (erasure must be flat in volume: the key goes at once, rows follow in the background);
//! - the resident memory of the process while ingesting (every service runs in-process,
//!   so this bounds the telemetry service's own).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use pdm_proto::{
    consent::v1::{GrantConsentRequest, Source, consent_service_client::ConsentServiceClient},
    subject::v1::{EraseSubjectRequest, subject_data_service_client::SubjectDataServiceClient},
    telemetry::v1::{
        self as pb, ConnectionType, EventKind, telemetry_service_client::TelemetryServiceClient,
    },
};
use pdm_runtime::sea_orm::{ConnectionTrait, DatabaseConnection, sqlx};
use pdm_testkit::Mesh;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::figures::{median, ms, round1, round3};
use super::{
    harness, load,
    postgres::{self, BenchDatabase},
};

/// Events per IngestEvents call (and per COPY transaction).
pub(super) const BATCH: usize = 500;
/// Concurrent ingestion streams.
pub(super) const STREAMS: usize = 4;
/// Subjects the ingestion benchmark spreads its events over.
const SUBJECTS: usize = 40;
/// Subjects per batch.
const SUBJECTS_PER_BATCH: usize = 20;
/// Events of the large and of the small erased subjects.
const BIG: usize = 100_000;
const SMALL: usize = 100;
/// Large and small subjects erased (medians are compared; one more small one warms up).
const BIG_SUBJECTS: usize = 5;
const SMALL_SUBJECTS: usize = 7;
/// Targets from the issues: ingestion against COPY is issue 19's 0.8x (the first wave
/// asked 0.5x; a row that said "met" against the old figure hid the open gap).
const RATIO_TARGET: f64 = 0.8;
const ERASE_RATIO_TARGET: f64 = 2.0;
const MEMORY_TARGET_MIB: f64 = 256.0;

const COLUMNS: &str =
    "subject_id, kind, occurred_at, received_at, batch_id, peer_hash, payload, sealed";

/// Runs the telemetry benchmarks, or reports them skipped when PostgreSQL is unreachable.
pub async fn run(seconds: Duration, wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    let ingest = [
        "telemetry.ingest_events",
        "telemetry.copy_baseline",
        "telemetry.memory",
    ]
    .iter()
    .any(|n| wanted(n));
    let erase = wanted("telemetry.erase_subject");
    if !ingest && !erase {
        return Ok(Vec::new());
    }
    let database = match BenchDatabase::create().await {
        Ok(database) => database,
        Err(e) => {
            return Ok(vec![json!({
                "name": "telemetry",
                "skipped": format!("PostgreSQL is not reachable at {}: {e}", postgres::server()),
            })]);
        }
    };
    let measured = measure(&database, seconds, ingest, erase).await;
    if let Err(e) = database.drop().await {
        eprintln!("warning: could not drop the benchmark database: {e}");
    }
    measured
}

async fn measure(
    database: &BenchDatabase,
    seconds: Duration,
    ingest: bool,
    erase: bool,
) -> anyhow::Result<Vec<Value>> {
    let mesh = harness::start(
        &["identity", "consent", "telemetry"],
        vec![("database.url".to_owned(), database.url().to_owned())],
    )
    .await?;
    let pool = database.connect(STREAMS as u32 + 2).await?;
    let result = async {
        let mut rows = Vec::new();
        if ingest {
            rows.extend(ingest_against_copy(&mesh, &pool, seconds).await?);
        }
        if erase {
            rows.push(erasure(&mesh, &pool).await?);
        }
        anyhow::Ok(rows)
    }
    .await;
    pool.close().await.ok();
    harness::stop(mesh).await;
    result
}

// === subjects and events ===

pub(super) fn telemetry_client(mesh: &Mesh) -> TelemetryServiceClient<Channel> {
    TelemetryServiceClient::new(mesh.channel("telemetry"))
}

/// Signs up `n` subjects (UK: product analytics rests on consent) who agreed to analytics.
pub(super) async fn consenting(mesh: &Mesh, n: usize) -> anyhow::Result<Vec<String>> {
    let subjects = harness::sign_up(mesh, n).await?;
    let mut consent = ConsentServiceClient::new(mesh.channel("consent"));
    for subject in &subjects {
        consent
            .grant_consent(GrantConsentRequest {
                subject_id: subject.clone(),
                purpose: "product_analytics".into(),
                source: Source::Api as i32,
                policy_version: "2024-06-28".into(),
                text_hash: "0".repeat(64),
                actor: "bench".into(),
                occurred_at: None,
            })
            .await?;
    }
    Ok(subjects)
}

const FEATURES: [&str; 8] = [
    "export", "import", "search", "share", "comment", "upload", "invite", "print",
];

/// A realistic event: every device field filled in, URLs with query strings, an IP.
pub(super) fn event(subject: &str, peer: &str, i: usize, at: &prost_types::Timestamp) -> pb::Event {
    let kind = match i % 10 {
        0 if !peer.is_empty() => EventKind::Interaction,
        1..=3 => EventKind::PageView,
        4 | 5 => EventKind::LinkClicked,
        _ => EventKind::FeatureUsed,
    };
    pb::Event {
        subject_id: subject.to_owned(),
        kind: kind as i32,
        occurred_at: Some(*at),
        feature: FEATURES[i % FEATURES.len()].to_owned(),
        link_url: format!("https://docs.example.com/guide/{}?utm_source=app", i % 50),
        // The service refuses a peer on any other kind (a field violation).
        peer_subject_id: if kind == EventKind::Interaction {
            peer.to_owned()
        } else {
            String::new()
        },
        screen: format!("screen-{}", i % 20),
        device: Some(pb::DeviceContext {
            connection: ConnectionType::Wifi as i32,
            locale: "en-GB".into(),
            time_zone: "Europe/London".into(),
            os_name: if i.is_multiple_of(3) {
                "Android"
            } else {
                "Windows"
            }
            .into(),
            os_version: "14".into(),
            browser_name: if i.is_multiple_of(2) {
                "Chrome"
            } else {
                "Firefox"
            }
            .into(),
            browser_version: "131.0".into(),
            app_version: "4.2.1".into(),
            ip_address: format!("198.51.{}.{}", i % 256, (i * 7) % 256),
            referrer_url: "https://search.example/results?q=pdm&page=2".into(),
            exit_url: "https://www.example.com/pricing#plans".into(),
            device_id: format!("device-{}-{}", &subject[..8], i % 3),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Batches of [`BATCH`] events, each over [`SUBJECTS_PER_BATCH`] of `subjects`.
pub(super) fn batches(subjects: &[String], count: usize) -> Vec<Vec<pb::Event>> {
    let at = pdm_runtime::convert::timestamp(chrono::Utc::now());
    (0..count)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let s = (b * 7 + i % SUBJECTS_PER_BATCH) % subjects.len();
                    let peer = &subjects[(s + 1) % subjects.len()];
                    event(&subjects[s], peer, b * BATCH + i, &at)
                })
                .collect()
        })
        .collect()
}

/// Sends `events` events of one subject in batches, [`STREAMS`] at a time.
pub(super) async fn ingest_subject(
    client: &TelemetryServiceClient<Channel>,
    subject: &str,
    events: usize,
) -> anyhow::Result<()> {
    let at = pdm_runtime::convert::timestamp(chrono::Utc::now());
    let all: Vec<pb::Event> = (0..events).map(|i| event(subject, "", i, &at)).collect();
    let mut chunks = all.chunks(BATCH).enumerate();
    loop {
        let mut senders = tokio::task::JoinSet::new();
        for (n, chunk) in chunks.by_ref().take(STREAMS) {
            let mut client = client.clone();
            let request = pb::IngestEventsRequest {
                batch_id: format!("erase-{subject}-{n}"),
                events: chunk.to_vec(),
            };
            senders.spawn(async move { client.ingest_events(request).await });
        }
        if senders.is_empty() {
            return Ok(());
        }
        while let Some(sent) = senders.join_next().await {
            let answer = sent??.into_inner();
            anyhow::ensure!(answer.dropped.is_empty(), "events dropped: {answer:?}");
        }
    }
}

// === (a), (b), (d): ingestion against COPY, memory ===

async fn ingest_against_copy(
    mesh: &Mesh,
    pool: &DatabaseConnection,
    seconds: Duration,
) -> anyhow::Result<Vec<Value>> {
    let subjects = consenting(mesh, SUBJECTS).await?;
    let templates: Arc<Vec<Vec<u8>>> = Arc::new(
        batches(&subjects, 16)
            .iter()
            .map(|events| wire::events(events))
            .collect(),
    );
    let grpc = tonic::client::Grpc::new(mesh.channel("telemetry"));
    let counter = Arc::new(AtomicU64::new(0));

    let rss_at_start = memory::status_kib("VmRSS:").unwrap_or(0);
    let peak_reset = memory::reset_peak();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(memory::sample_while(sampling.clone()));
    let ingest_cpu = cpu::Sample::now();
    let ingest = load::run(STREAMS, seconds, move || {
        let mut grpc = grpc.clone();
        let i = counter.fetch_add(1, Ordering::Relaxed);
        let request = wire::request(
            &format!("bench-{i}"),
            &templates[usize::try_from(i).unwrap_or(0) % templates.len()],
        );
        async move {
            grpc.ready().await.map_err(|_| ())?;
            let answer = grpc
                .unary(
                    tonic::Request::new(request),
                    tonic::codegen::http::uri::PathAndQuery::from_static(wire::INGEST_EVENTS),
                    wire::PreEncoded,
                )
                .await
                .map_err(|_| ())?;
            if answer.into_inner().accepted as usize == BATCH {
                Ok(())
            } else {
                Err(())
            }
        }
    })
    .await;
    let ingest_cpu = ingest_cpu.used();
    sampling.store(false, Ordering::Relaxed);
    let sampled_max = sampler.await.unwrap_or(0);
    let hwm = memory::status_kib("VmHWM:").unwrap_or(0);

    let (copy, copy_cpu) = copy_baseline(pool, seconds).await?;
    let ingest_rate = ingest.throughput() * BATCH as f64;
    let copy_rate = copy.throughput() * BATCH as f64;

    let mut ingest_row = ingest.to_json("telemetry.ingest_events", STREAMS);
    ingest_row["database"] = json!("postgresql");
    ingest_row["batch_size"] = json!(BATCH);
    ingest_row["consent_gate"] = json!(true);
    ingest_row["subjects"] = json!(SUBJECTS);
    ingest_row["requests"] = json!("encoded once and sent as bytes, like the COPY data");
    ingest_row["events_per_s"] = json!(ingest_rate.round());
    ingest_row["cpu_us_per_event"] = ingest_cpu.per_event(ingest.succeeded() * BATCH);
    let mut copy_row = copy.to_json("telemetry.copy_baseline", STREAMS);
    copy_row["database"] = json!("postgresql");
    copy_row["batch_size"] = json!(BATCH);
    copy_row["events_per_s"] = json!(copy_rate.round());
    copy_row["cpu_us_per_event"] = copy_cpu.per_event(copy.succeeded() * BATCH);
    copy_row["what"] = json!(
        "the rows IngestEvents stored, in the order stored, COPY'd in binary format (as the \
         service writes them) into an unpartitioned table with the same columns and indexes, \
         one transaction per 500"
    );
    let ratio = round3(ingest_rate / copy_rate.max(f64::EPSILON));
    let peak_mib = if peak_reset { hwm } else { sampled_max } as f64 / 1024.0;
    Ok(vec![
        ingest_row,
        copy_row,
        json!({
            "name": "telemetry.ingest_vs_copy",
            "ratio": ratio,
            "target_at_least": RATIO_TARGET,
            "why": "on one machine the service and PostgreSQL share the CPU: compare the rows' \
                    cpu_us_per_event (this_process is the service, in-process, with the load \
                    generator; the rest of the machine is PostgreSQL)",
            "met": ratio >= RATIO_TARGET,
        }),
        json!({
            "name": "telemetry.memory",
            "during": "telemetry.ingest_events",
            "peak_rss_mib": round1(peak_mib),
            "sampled_max_rss_mib": round1(sampled_max as f64 / 1024.0),
            "peak_is_since_reset": peak_reset,
            "rss_at_start_mib": round1(rss_at_start as f64 / 1024.0),
            "growth_during_ingest_mib": round1((peak_mib * 1024.0 - rss_at_start as f64).max(0.0) / 1024.0),
            "glibc_tunables": std::env::var("GLIBC_TUNABLES").unwrap_or_default(),
            "target_below_mib": MEMORY_TARGET_MIB,
            "met": peak_mib < MEMORY_TARGET_MIB,
            "note": "the whole bench process: identity, consent and telemetry in-process, \
                     plus the load generator; without a fixed glibc mmap threshold (make bench \
                     sets one) the arenas keep the memory of identity's password hashing from \
                     the sign-ups, which is not the telemetry service's",
        }),
    ])
}

/// Batches of stored rows the COPY baseline goes through.
const COPY_BATCHES: usize = 16;

/// COPYs the rows the service stored, [`BATCH`] per transaction in the order they were
/// stored and in binary format, into a plain table. (The rows differ from batch to batch, as the service's do:
/// repeating one fixed batch would make the driver's network behaviour, which depends on
/// message sizes, unlike the service's.)
async fn copy_baseline(
    pool: &DatabaseConnection,
    seconds: Duration,
) -> anyhow::Result<(load::Stats, cpu::Used)> {
    for ddl in [
        "CREATE TABLE copy_baseline (event_id BIGSERIAL, subject_id TEXT NULL, \
         kind TEXT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ NOT NULL, \
         batch_id TEXT NOT NULL, peer_hash BYTEA NULL, payload BYTEA NOT NULL, \
         sealed BOOLEAN NOT NULL)",
        "CREATE INDEX copy_baseline_subject ON copy_baseline (subject_id, event_id)",
        "CREATE INDEX copy_baseline_peer ON copy_baseline (peer_hash)",
        "CREATE INDEX copy_baseline_occurred ON copy_baseline (occurred_at)",
    ] {
        pool.execute_unprepared(ddl).await?;
    }
    let pool = pool.get_postgres_connection_pool().clone();
    let rows = {
        let mut conn = pool.acquire().await?;
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY (SELECT {COLUMNS} FROM telemetry.events ORDER BY event_id \
                 LIMIT {}) TO STDOUT (FORMAT binary)",
                COPY_BATCHES * BATCH
            ))
            .await?;
        let mut data = Vec::new();
        while let Some(chunk) = out.next().await {
            data.extend_from_slice(&chunk?);
        }
        data
    };
    // A slow machine may have stored fewer than COPY_BATCHES batches: the baseline cycles
    // through the whole ones there are.
    let batches = binary::batches(&rows, BATCH)?;
    anyhow::ensure!(
        !batches.is_empty(),
        "the ingestion benchmark stored fewer than {BATCH} rows"
    );
    let batches = Arc::new(batches);
    let counter = Arc::new(AtomicU64::new(0));
    let started = cpu::Sample::now();
    let stats = load::run(STREAMS, seconds, move || {
        let pool = pool.clone();
        let batches = batches.clone();
        let i = usize::try_from(counter.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
        async move {
            let mut tx = pool.begin().await?;
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY copy_baseline ({COLUMNS}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            copy.send(batches[i % batches.len()].as_slice()).await?;
            copy.finish().await?;
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        }
    })
    .await;
    Ok((stats, started.used()))
}

// === (c): erasure against volume ===

async fn erasure(mesh: &Mesh, pool: &DatabaseConnection) -> anyhow::Result<Value> {
    let client = telemetry_client(mesh);
    let mut subject_data = SubjectDataServiceClient::new(mesh.channel("telemetry"));
    let subjects = consenting(mesh, BIG_SUBJECTS + SMALL_SUBJECTS + 1).await?;
    let (bigs, smalls) = subjects.split_at(BIG_SUBJECTS);
    for s in bigs {
        ingest_subject(&client, s, BIG).await?;
    }
    for s in smalls {
        ingest_subject(&client, s, SMALL).await?;
    }
    let pool = pool.get_postgres_connection_pool().clone();
    let mut erase = async |subject: &str| -> anyhow::Result<(Duration, Duration)> {
        let started = Instant::now();
        subject_data
            .erase_subject(EraseSubjectRequest {
                request_id: format!("bench-erase-{subject}"),
                subject_id: subject.to_owned(),
            })
            .await?;
        let erased = started.elapsed();
        // Rows go in the background; the next erasure starts once they are gone.
        for _ in 0..1200 {
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM telemetry.events WHERE subject_id = $1")
                    .bind(subject)
                    .fetch_one(&pool)
                    .await?;
            if left == 0 {
                return Ok((erased, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("background deletion did not finish within a minute")
    };
    // The first small subject warms the path up and is not counted; then small and large
    // alternate, so whatever the large deletions leave behind (autovacuum, WAL) weighs on
    // both.
    erase(&smalls[0]).await?;
    let mut small_ms = Vec::new();
    let mut small_gone_ms = Vec::new();
    let mut big_ms = Vec::new();
    let mut big_gone_ms = Vec::new();
    let mut bigs_left = bigs.iter();
    for s in &smalls[1..] {
        let (erased, gone) = erase(s).await?;
        small_ms.push(ms(erased));
        small_gone_ms.push(ms(gone));
        if let Some(b) = bigs_left.next() {
            let (erased, gone) = erase(b).await?;
            big_ms.push(ms(erased));
            big_gone_ms.push(ms(gone));
        }
    }
    for b in bigs_left {
        let (erased, gone) = erase(b).await?;
        big_ms.push(ms(erased));
        big_gone_ms.push(ms(gone));
    }
    let small_median = median(&mut small_ms);
    let big_median = median(&mut big_ms);
    let ratio = round3(big_median / small_median.max(f64::EPSILON));
    Ok(json!({
        "name": "telemetry.erase_subject",
        "database": "postgresql",
        "big_subject_events": BIG,
        "small_subject_events": SMALL,
        "big_erase_ms_median": round3(big_median),
        "big_erase_ms": big_ms.iter().map(|m| round3(*m)).collect::<Vec<_>>(),
        "small_erase_ms_median": round3(small_median),
        "small_erase_ms": small_ms.iter().map(|m| round3(*m)).collect::<Vec<_>>(),
        "big_rows_deleted_after_ms_median": round1(median(&mut big_gone_ms)),
        "small_rows_deleted_after_ms_median": round1(median(&mut small_gone_ms)),
        "ratio": ratio,
        "target_at_most": ERASE_RATIO_TARGET,
        "met": ratio <= ERASE_RATIO_TARGET,
    }))
}

// === pre-encoded requests ===

/// IngestEvents requests encoded once, sent as bytes: the load generator's own cost
/// (building and encoding 500 events a call, in this same process) stays out of the
/// measurement, as it does for the COPY baseline, whose rows are encoded once too.
/// PostgreSQL's binary COPY format, cut into batches of rows.
mod binary {
    /// Signature, flags and header extension length (the server writes no extension).
    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

    fn be_i16(data: &[u8], at: usize) -> anyhow::Result<i16> {
        let bytes = data
            .get(at..at + 2)
            .ok_or_else(|| anyhow::anyhow!("COPY data cut short"))?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn be_i32(data: &[u8], at: usize) -> anyhow::Result<i32> {
        let bytes = data
            .get(at..at + 4)
            .ok_or_else(|| anyhow::anyhow!("COPY data cut short"))?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The whole batches of `per_batch` rows in `data` (a `COPY … TO STDOUT (FORMAT
    /// binary)`), each a complete COPY payload of its own.
    pub fn batches(data: &[u8], per_batch: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        anyhow::ensure!(data.starts_with(HEADER), "not binary COPY data");
        let mut rows: Vec<&[u8]> = Vec::new();
        let mut at = HEADER.len();
        loop {
            let fields = be_i16(data, at)?;
            if fields < 0 {
                break;
            }
            let start = at;
            at += 2;
            for _ in 0..fields {
                let len = be_i32(data, at)?;
                at += 4 + usize::try_from(len).unwrap_or(0);
            }
            rows.push(
                data.get(start..at)
                    .ok_or_else(|| anyhow::anyhow!("COPY data cut short"))?,
            );
        }
        Ok(rows
            .chunks_exact(per_batch)
            .map(|chunk| [&[HEADER], chunk, &[&TRAILER[..]]].concat().concat())
            .collect())
    }
}

pub(super) mod wire {
    use pdm_proto::telemetry::v1 as pb;
    use prost::{
        Message as _,
        bytes::{BufMut as _, Bytes},
    };
    use tonic::{
        Status,
        codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    };

    /// The method's path.
    pub const INGEST_EVENTS: &str = "/pdm.telemetry.v1.TelemetryService/IngestEvents";

    /// `events` encoded as the `events` field of an IngestEventsRequest.
    pub fn events(events: &[pb::Event]) -> Vec<u8> {
        pb::IngestEventsRequest {
            batch_id: String::new(),
            events: events.to_vec(),
        }
        .encode_to_vec()
    }

    /// A request: its batch id, then the pre-encoded events (fields may be concatenated).
    pub fn request(batch_id: &str, events: &[u8]) -> Bytes {
        let mut out = pb::IngestEventsRequest {
            batch_id: batch_id.to_owned(),
            events: Vec::new(),
        }
        .encode_to_vec();
        out.extend_from_slice(events);
        Bytes::from(out)
    }

    /// Sends bytes as they are, decodes the answer.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PreEncoded;

    /// Writes the bytes.
    #[derive(Debug)]
    pub struct Raw;

    /// Decodes an IngestEventsResponse.
    #[derive(Debug)]
    pub struct Answer;

    impl Encoder for Raw {
        type Item = Bytes;
        type Error = Status;

        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for Answer {
        type Item = pb::IngestEventsResponse;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
            pb::IngestEventsResponse::decode(src)
                .map(Some)
                .map_err(|e| Status::internal(e.to_string()))
        }
    }

    impl Codec for PreEncoded {
        type Encode = Bytes;
        type Decode = pb::IngestEventsResponse;
        type Encoder = Raw;
        type Decoder = Answer;

        fn encoder(&mut self) -> Raw {
            Raw
        }

        fn decoder(&mut self) -> Answer {
            Answer
        }
    }
}

// === resident memory ===

/// CPU time over a measurement, of this process and of the whole machine, from `/proc`.
mod cpu {
    use serde_json::{Value, json};

    /// Clock ticks per second of `/proc`'s CPU times (USER_HZ: 100 on Linux x86-64 and
    /// arm64, whatever the kernel's own tick rate).
    const TICKS_PER_SECOND: f64 = 100.0;

    /// CPU seconds used so far: `(this process, every CPU of the machine, busy)`.
    fn now() -> Option<(f64, f64)> {
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 12th and 13th of them.
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let own: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<f64> = machine
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
        let busy: f64 = ticks.iter().take(8).sum::<f64>()
            - ticks.get(3).copied().unwrap_or(0.0)
            - ticks.get(4).copied().unwrap_or(0.0);
        Some((own / TICKS_PER_SECOND, busy / TICKS_PER_SECOND))
    }

    /// Where a measurement started.
    pub struct Sample(Option<(f64, f64)>);

    /// CPU seconds a measurement used.
    pub struct Used(Option<(f64, f64)>);

    impl Sample {
        /// Now.
        pub fn now() -> Self {
            Self(now())
        }

        /// What was used since.
        pub fn used(self) -> Used {
            Used(
                self.0
                    .zip(now())
                    .map(|((p0, m0), (p1, m1))| (p1 - p0, m1 - m0)),
            )
        }
    }

    impl Used {
        /// Microseconds of CPU per event: this process's, and the rest of the machine's
        /// (PostgreSQL, when it runs here).
        pub fn per_event(&self, events: usize) -> Value {
            match self.0 {
                Some((own, machine)) if events > 0 => {
                    let per = |s: f64| (s * 1e6 / events as f64 * 10.0).round() / 10.0;
                    json!({
                        "this_process": per(own),
                        "rest_of_machine": per((machine - own).max(0.0)),
                    })
                }
                _ => Value::Null,
            }
        }
    }
}

mod memory {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        time::Duration,
    };

    /// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`).
    pub fn status_kib(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Resets the peak resident set size (VmHWM), so it covers what follows only.
    pub fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// Samples VmRSS every 20 ms while `running`; returns the largest, in KiB.
    pub async fn sample_while(running: Arc<AtomicBool>) -> u64 {
        let mut max = 0;
        while running.load(Ordering::Relaxed) {
            max = max.max(status_kib("VmRSS:").unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        max.max(status_kib("VmRSS:").unwrap_or(0))
    }
}
