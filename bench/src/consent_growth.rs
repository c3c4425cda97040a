//! How consent's cost grows with its subjects (issue 19, docs/scale.md), on PostgreSQL:
//! the ledger is filled in steps (`PDM_BENCH_GROWTH_SUBJECTS`, a comma-separated list of
//! totals; default 10000,100000), and at each step consent is started afresh (its
//! decision cache empty) and measured:
//!
//! - CheckProcessing on subjects it has not seen since it started (each call asks identity
//!   whether the calling client is linked with the subject, and loads the subject's ledger
//!   and region from the database): latency at 1 in flight, and checks per second at 16
//!   in flight on other such subjects;
//! - the same subjects checked again (from the cache), at 16 in flight;
//! - ExportSubject (consent's part of an access package) and EraseSubject, medians;
//! - the time consent takes to start on a ledger of that size;
//! - the ledger's size on disk (entries, regions, their indexes) per subject.
//!
//! With `PDM_BENCH_DROP_CACHES` set (root only), the operating system's page cache is
//! emptied before each step's consent starts, so cold checks read from disk.
//!
//! Subjects are made in bulk: 1 M through identity's sign-up (argon2id, ~60 a second
//! here) would take hours. One subject is made through the API (signed up, five ledger
//! entries through consent's RPCs, its region learned from identity); every other subject
//! is a copy of it written with SQL, under an id of its own. A subject's entries are
//! written one entry of every subject at a time, so they lie far apart in the table, as
//! entries written over months would. Every checked subject must be allowed (as the
//! copied one is): a bulk load consent could not read would fail the benchmark rather
//! than measure denials. Nothing else is asserted: the curves are the result.

use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use pdm_proto::{
    consent::v1::{
        CheckProcessingRequest, GrantConsentRequest, SetDoNotSellRequest, Source,
        WithdrawConsentRequest, consent_service_client::ConsentServiceClient,
    },
    subject::v1::{
        EraseSubjectRequest, ExportSubjectRequest,
        subject_data_service_client::SubjectDataServiceClient,
    },
};
use pdm_runtime::sea_orm::{DatabaseConnection, sqlx};
use pdm_testkit::Mesh;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{
    figures::{self, median, ms, round1, round3},
    harness,
    postgres::{self, BenchDatabase},
};

/// Steps when `PDM_BENCH_GROWTH_SUBJECTS` is unset.
const DEFAULT_STEPS: [u64; 2] = [10_000, 100_000];
/// Subjects checked cold at 1 in flight, and (others) at [`IN_FLIGHT`].
const SAMPLE: usize = 1000;
/// Checks in flight for the throughput figures.
const IN_FLIGHT: usize = 16;
/// Subjects checked at [`IN_FLIGHT`] before measuring, not counted: the services' pools
/// open their database connections on first need (one is kept), and that is not what a
/// cold decision cache costs.
const WARM_UP: usize = 64;
/// Exports and erasures per step.
const EXPORTS: usize = 5;
const ERASURES: usize = 3;
/// The purpose checked: the copied subject granted it, withdrew it and granted it again.
const PURPOSE: &str = "marketing_email";
/// Rows are made this many subjects at a time (one statement each).
const CHUNK: u64 = 100_000;

/// Runs the consent growth measurements, or reports them skipped when PostgreSQL is
/// unreachable.
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    if !wanted("scale.growth.consent") {
        return Ok(Vec::new());
    }
    let steps = steps()?;
    postgres::on_fresh_database("scale.growth.consent", async |database| {
        let pool = database.connect(2).await?;
        let rows = grow(database, &pool, &steps).await;
        pool.close().await.ok();
        rows
    })
    .await
}

/// The steps: totals of subjects, ascending.
fn steps() -> anyhow::Result<Vec<u64>> {
    let steps = figures::steps("PDM_BENCH_GROWTH_SUBJECTS", &DEFAULT_STEPS)?;
    let fewest = (WARM_UP + 2 * SAMPLE + ERASURES) as u64;
    anyhow::ensure!(
        steps.first().is_some_and(|&s| s >= fewest),
        "PDM_BENCH_GROWTH_SUBJECTS: every step needs at least {fewest} subjects"
    );
    Ok(steps)
}

/// Identity and consent on the benchmark's database, consent's decision cache empty.
async fn start(database: &BenchDatabase) -> anyhow::Result<Mesh> {
    harness::start(
        &["identity", "consent"],
        vec![("database.url".to_owned(), database.url().to_owned())],
    )
    .await
}

async fn grow(
    database: &BenchDatabase,
    pool: &DatabaseConnection,
    steps: &[u64],
) -> anyhow::Result<Vec<Value>> {
    let mesh = start(database).await?;
    let template = template(&mesh).await;
    harness::stop(mesh).await;
    let template = template?;
    let pg = pool.get_postgres_connection_pool().clone();
    let mut held = 0u64;
    let mut rows = Vec::new();
    for &target in steps {
        let loading = Instant::now();
        copy_subjects(&pg, &template, held + 1, target).await?;
        held = target;
        sqlx::query("ANALYZE consent.consent_events, consent.subjects, identity.subject_links")
            .execute(&pg)
            .await?;
        let load_time = loading.elapsed();

        if std::env::var_os("PDM_BENCH_DROP_CACHES").is_some() {
            drop_page_cache()?;
        }
        let starting = Instant::now();
        let mesh = start(database).await?;
        let start_time = starting.elapsed();
        let measured = measure(&mesh, &pg, held).await;
        harness::stop(mesh).await;
        let mut row = measured?;

        let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consent.consent_events")
            .fetch_one(&pg)
            .await?;
        let bytes: i64 = sqlx::query_scalar(
            "SELECT (pg_total_relation_size('consent.consent_events') \
                   + pg_total_relation_size('consent.subjects'))::bigint",
        )
        .fetch_one(&pg)
        .await?;
        let subjects = held + 1;
        if let Value::Object(fields) = &mut row {
            fields.extend([
                ("subjects_held".to_owned(), json!(subjects)),
                ("ledger_entries".to_owned(), json!(entries)),
                (
                    "bulk_load_s".to_owned(),
                    json!(round1(load_time.as_secs_f64())),
                ),
                ("start_ms".to_owned(), json!(round1(ms(start_time)))),
                (
                    "ledger_mib".to_owned(),
                    json!(round1(bytes as f64 / 1_048_576.0)),
                ),
                (
                    "bytes_per_subject".to_owned(),
                    json!(round1(bytes as f64 / subjects as f64)),
                ),
            ]);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Empties the operating system's page cache (root only), so the checks read the ledger
/// from disk; PostgreSQL's own buffers (128 MB by default) keep what they hold.
fn drop_page_cache() -> anyhow::Result<()> {
    let synced = std::process::Command::new("sync").status()?;
    anyhow::ensure!(synced.success(), "sync failed");
    std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| {
        anyhow::anyhow!("PDM_BENCH_DROP_CACHES: cannot drop the page cache (needs root): {e}")
    })
}

/// Signs up the subject every other one copies and gives it five ledger entries through
/// consent's API; its region is learned from identity by a first check.
async fn template(mesh: &Mesh) -> anyhow::Result<String> {
    let subject = harness::sign_up(mesh, 1)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no subject"))?;
    let mut consent = ConsentServiceClient::new(mesh.channel("consent"));
    let grant = |purpose: &str| GrantConsentRequest {
        subject_id: subject.clone(),
        purpose: purpose.into(),
        source: Source::Api as i32,
        policy_version: "2024-06-28".into(),
        text_hash: "0".repeat(64),
        actor: "bench".into(),
        occurred_at: None,
    };
    consent.grant_consent(grant("product_analytics")).await?;
    consent.grant_consent(grant(PURPOSE)).await?;
    consent
        .withdraw_consent(WithdrawConsentRequest {
            subject_id: subject.clone(),
            purpose: PURPOSE.into(),
            source: Source::Api as i32,
            actor: "bench".into(),
        })
        .await?;
    consent.grant_consent(grant(PURPOSE)).await?;
    consent
        .set_do_not_sell(SetDoNotSellRequest {
            subject_id: subject.clone(),
            do_not_sell: true,
            source: Source::Api as i32,
            actor: "bench".into(),
        })
        .await?;
    allowed(&mut consent, &subject)
        .await
        .map_err(|e| e.context("the subject signed up through the API"))?;
    Ok(subject)
}

/// The id of copied subject `g`: a UUID made from its number (a macro, so the statements
/// stay string literals).
macro_rules! copy_id {
    () => {
        "md5('pdm-bench-' || g)::uuid::text"
    };
}

/// Writes subjects `from..=to` as copies of `template`: their regions, their ledger
/// entries (one entry of every subject of a chunk at a time) and their links with the
/// company client the benchmark calls as.
async fn copy_subjects(
    pg: &sqlx::PgPool,
    template: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let mut first = from;
    while first <= to {
        let last = (first + CHUNK - 1).min(to);
        let (a, b) = (i64::try_from(first)?, i64::try_from(last)?);
        let mut tx = pg.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO consent.subjects (subject_id, region, checked_at) SELECT ",
            copy_id!(),
            ", t.region, now() \
             FROM generate_series($1::bigint, $2::bigint) g, consent.subjects t \
             WHERE t.subject_id = $3"
        ))
        .bind(a)
        .bind(b)
        .bind(template)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO consent.consent_events \
               (subject_id, kind, purpose, channel, source, policy_version, text_hash, actor, \
                occurred_at, recorded_at) SELECT ",
            copy_id!(),
            ", e.kind, e.purpose, e.channel, e.source, e.policy_version, \
                    e.text_hash, e.actor, e.occurred_at, e.recorded_at \
             FROM consent.consent_events e, generate_series($1::bigint, $2::bigint) g \
             WHERE e.subject_id = $3 \
             ORDER BY e.seq, g"
        ))
        .bind(a)
        .bind(b)
        .bind(template)
        .execute(&mut *tx)
        .await?;
        // A company client sees only subjects linked with it: consent asks identity.
        sqlx::query(concat!(
            "INSERT INTO identity.subject_links (subject_id, client, how, linked_at) SELECT ",
            copy_id!(),
            ", l.client, l.how, l.linked_at \
             FROM identity.subject_links l, generate_series($1::bigint, $2::bigint) g \
             WHERE l.subject_id = $3"
        ))
        .bind(a)
        .bind(b)
        .bind(template)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        first = last + 1;
    }
    Ok(())
}

/// The ids of copied subjects `numbers`.
async fn ids(pg: &sqlx::PgPool, numbers: &[i64]) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT ",
        copy_id!(),
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS t(g, o) ORDER BY o"
    ))
    .bind(numbers)
    .fetch_all(pg)
    .await?)
}

/// `n` distinct subject numbers in `1..=held`, drawn at random.
fn draw(n: usize, held: u64) -> anyhow::Result<Vec<i64>> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut state = u64::from_le_bytes(seed) | 1;
    let mut drawn = std::collections::BTreeSet::new();
    let mut numbers = Vec::with_capacity(n);
    while numbers.len() < n {
        // xorshift64: uniform enough to pick subjects.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let number = i64::try_from(state % held + 1)?;
        if drawn.insert(number) {
            numbers.push(number);
        }
    }
    Ok(numbers)
}

/// Checks [`PURPOSE`] for `subject`; fails unless it is allowed, naming the reason.
async fn allowed(consent: &mut ConsentServiceClient<Channel>, subject: &str) -> anyhow::Result<()> {
    let decision = consent
        .check_processing(CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: PURPOSE.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .unwrap_or_default();
    anyhow::ensure!(
        decision.allowed,
        "a subject made for the benchmark is not allowed {PURPOSE} ({:?}): the bulk load is \
         not what consent reads",
        decision.reason()
    );
    Ok(())
}

/// Checks every one of `subjects`, `in_flight` at a time: the latencies in ms (sorted)
/// and the wall time.
async fn check_all(
    consent: &ConsentServiceClient<Channel>,
    subjects: &[String],
    in_flight: usize,
) -> anyhow::Result<(Vec<f64>, Duration)> {
    let started = Instant::now();
    let mut latencies: Vec<f64> = stream::iter(subjects)
        .map(|subject| {
            let mut consent = consent.clone();
            async move {
                let t = Instant::now();
                allowed(&mut consent, subject).await?;
                anyhow::Ok(ms(t.elapsed()))
            }
        })
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    let wall = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, wall))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The step's measurements on a consent just started over `held` copied subjects.
async fn measure(mesh: &Mesh, pg: &sqlx::PgPool, held: u64) -> anyhow::Result<Value> {
    let numbers = draw(WARM_UP + 2 * SAMPLE + ERASURES, held)?;
    let subjects = ids(pg, &numbers).await?;
    let (warm_up, rest) = subjects.split_at(WARM_UP);
    let (alone, rest) = rest.split_at(SAMPLE);
    let (together, erased) = rest.split_at(SAMPLE);
    let consent = ConsentServiceClient::new(mesh.channel("consent"));
    check_all(&consent, warm_up, IN_FLIGHT).await?;

    let (cold_1, _) = check_all(&consent, alone, 1).await?;
    let (cold_16, cold_wall) = check_all(&consent, together, IN_FLIGHT).await?;
    let (warm_16, warm_wall) = check_all(&consent, together, IN_FLIGHT).await?;

    let mut subject_data = SubjectDataServiceClient::new(mesh.channel("consent"));
    let mut export_ms = Vec::new();
    for subject in alone.iter().take(EXPORTS) {
        let started = Instant::now();
        let mut records = subject_data
            .export_subject(ExportSubjectRequest {
                subject_id: subject.clone(),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        let mut n = 0usize;
        while let Some(record) = records.next().await {
            record?;
            n += 1;
        }
        anyhow::ensure!(n > 0, "consent exported nothing of a copied subject");
        export_ms.push(ms(started.elapsed()));
    }
    let mut erase_ms = Vec::new();
    for subject in erased {
        let started = Instant::now();
        subject_data
            .erase_subject(EraseSubjectRequest {
                request_id: format!("growth-{subject}"),
                subject_id: subject.clone(),
            })
            .await?;
        erase_ms.push(ms(started.elapsed()));
    }
    Ok(json!({
        "name": "scale.growth.consent",
        "database": "postgresql",
        "cold_check_ms_p50": round3(percentile(&cold_1, 50.0)),
        "cold_check_ms_p99": round3(percentile(&cold_1, 99.0)),
        "cold_checks_per_s_16_in_flight": round1(SAMPLE as f64 / cold_wall.as_secs_f64()),
        "cold_check_ms_p50_16_in_flight": round3(percentile(&cold_16, 50.0)),
        "cold_check_ms_p99_16_in_flight": round3(percentile(&cold_16, 99.0)),
        "warm_checks_per_s_16_in_flight": round1(SAMPLE as f64 / warm_wall.as_secs_f64()),
        "warm_check_ms_p99_16_in_flight": round3(percentile(&warm_16, 99.0)),
        "export_ms_median": round3(median(&mut export_ms)),
        "erase_ms_median": round3(median(&mut erase_ms)),
        "checked_subjects": SAMPLE,
    }))
}
