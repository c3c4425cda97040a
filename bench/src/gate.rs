//! The Rust client's consent gate (`pdm-client`): a cached decision answered in-process
//! (throughput on one task, and per-decision latency), and how long a withdrawal on the
//! server takes to reach a connected gate, and the heap a cached decision keeps (counted by
//! the benchmark's allocator while a fresh gate fills). Over mutual TLS as company client
//! `testkit`, against the mesh's consent service. Also, across two consent replicas: the
//! cost of a consistency token, and how stale a replica is without one.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pdm_client::{ConsentClient, ConsentGate, GateOptions, PdmClient, consent::Grant};
use pdm_proto::consent::v1::{ListPurposesRequest, consent_service_client::ConsentServiceClient};
use pdm_testkit::{Mesh, TEST_CLIENT};
use serde_json::{Value, json};

use super::{alloc::Counting, figures, harness};

/// Subjects whose decisions the gate caches.
const SUBJECTS: usize = 100;
/// Purposes asked per subject.
const PURPOSES: [&str; 4] = [
    "marketing_email",
    "product_analytics",
    "personalization",
    "service_provision",
];
/// Lookups timed together (one `Instant` pair per group keeps the clock out of the figure).
const GROUP: usize = 64;
/// Withdrawals whose propagation is timed.
const ROUNDS: usize = 50;
/// Subjects whose every purpose a fresh gate caches while its heap is counted.
const MEMORY_SUBJECTS: usize = 500;

/// Runs the gate benchmarks.
pub async fn run(mesh: &Mesh, seconds: Duration) -> anyhow::Result<Vec<Value>> {
    let addr = mesh
        .addr("consent")
        .ok_or_else(|| anyhow::anyhow!("consent is not running"))?;
    let client = PdmClient::builder()
        .endpoint("consent", format!("http://{addr}"))
        .client_certificates(mesh.certificate_dir(), TEST_CLIENT)
        .build()?;
    let consent = client.consent()?;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let subjects = harness::sign_up(mesh, SUBJECTS).await?;
    let started = Instant::now();
    while !gate.connected() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "gate not connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pairs: Vec<(&str, &str)> = subjects
        .iter()
        .flat_map(|s| PURPOSES.iter().map(move |p| (s.as_str(), *p)))
        .collect();
    for (subject, purpose) in &pairs {
        gate.allowed(subject, purpose).await;
    }
    anyhow::ensure!(
        pairs.iter().all(|(s, p)| gate.cached(s, p).is_some()),
        "not every pair was cached"
    );

    // Cached decisions on one task, in groups of GROUP lookups.
    let mut per_decision_ns = Vec::new();
    let mut decisions = 0u64;
    let until = Instant::now() + seconds;
    let mut i = 0usize;
    let measuring = Instant::now();
    while Instant::now() < until {
        let t = Instant::now();
        for _ in 0..GROUP {
            let (subject, purpose) = pairs[i % pairs.len()];
            std::hint::black_box(gate.cached(subject, purpose));
            i += 1;
        }
        per_decision_ns.push(t.elapsed().as_nanos() as f64 / GROUP as f64);
        decisions += GROUP as u64;
    }
    let elapsed = measuring.elapsed().as_secs_f64();
    per_decision_ns.sort_by(f64::total_cmp);
    let at = |q: f64| per_decision_ns[((per_decision_ns.len() - 1) as f64 * q) as usize];
    let mut results = vec![json!({
        "name": "gate.cached_decision",
        "pairs_cached": pairs.len(),
        "decisions_per_second": (decisions as f64 / elapsed).round(),
        "p50_ns": figures::round1(at(0.5)),
        "p99_ns": figures::round1(at(0.99)),
        "note": "one task; latency per decision, from groups of 64 lookups",
    })];

    // A withdrawal on the server, until the connected gate denies.
    let subject = subjects[0].clone();
    let purpose = "product_analytics";
    let mut delays = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        consent.grant(&grant(&subject, purpose)).await?;
        let waiting = Instant::now();
        while !gate.allowed(&subject, purpose).await.allowed() {
            anyhow::ensure!(
                waiting.elapsed() < Duration::from_secs(10),
                "grant never seen"
            );
            tokio::task::yield_now().await;
        }
        consent.withdraw(&subject, purpose, "bench").await?;
        let withdrawn = Instant::now();
        while gate.allowed(&subject, purpose).await.allowed() {
            anyhow::ensure!(
                withdrawn.elapsed() < Duration::from_secs(10),
                "withdrawal never seen"
            );
            tokio::task::yield_now().await;
        }
        delays.push(figures::ms(withdrawn.elapsed()));
    }
    delays.sort_by(f64::total_cmp);
    results.push(json!({
        "name": "gate.withdrawal_propagation",
        "rounds": ROUNDS,
        "p50_ms": figures::round3(delays[ROUNDS / 2]),
        "p99_ms": figures::round3(delays[(ROUNDS * 99) / 100]),
        "max_ms": figures::round3(delays[ROUNDS - 1]),
        "note": "from WithdrawConsent's answer until the gate denies",
    }));
    results.push(memory(mesh, &consent, &gate).await?);
    results.push(read_your_writes(mesh, &consent, &subject).await?);
    Ok(results)
}

/// Asks `gate` every (subject, purpose) pair at once (misses coalesce into batches).
async fn fill(gate: &ConsentGate, subjects: &[String], purposes: &[String]) {
    join_all(
        subjects
            .iter()
            .flat_map(|s| purposes.iter().map(move |p| gate.allowed(s, p))),
    )
    .await;
}

/// The heap a fresh gate keeps per cached decision: filled with one purpose per subject,
/// then with the others, each step counted; per pair from the second step, per subject
/// what the first kept beyond its pairs. The service's own cache is warmed first through
/// `warm`, so the windows hold the new gate's growth only.
async fn memory(mesh: &Mesh, consent: &ConsentClient, warm: &ConsentGate) -> anyhow::Result<Value> {
    let purposes: Vec<String> = ConsentServiceClient::new(mesh.channel("consent"))
        .list_purposes(ListPurposesRequest {})
        .await?
        .into_inner()
        .purposes
        .into_iter()
        .map(|p| p.key)
        .collect();
    anyhow::ensure!(
        purposes.len() >= 2,
        "the catalogue has fewer than 2 purposes"
    );
    let subjects = harness::sign_up(mesh, MEMORY_SUBJECTS).await?;
    fill(warm, &subjects, &purposes).await;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let started = Instant::now();
    while !gate.connected() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "gate not connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The gate's first decision outside the windows: its buffers and connection.
    gate.allowed(&subjects[0], &purposes[0]).await;
    let settle = || tokio::time::sleep(Duration::from_millis(200));
    let window = Counting::start();
    fill(&gate, &subjects, &purposes[..1]).await;
    settle().await;
    let first = window.net();
    drop(window);
    let window = Counting::start();
    fill(&gate, &subjects, &purposes[1..]).await;
    settle().await;
    let rest = window.net();
    drop(window);
    let pairs = subjects.len() * (purposes.len() - 1);
    anyhow::ensure!(
        gate.len() >= subjects.len() * purposes.len() - 1,
        "the gate cached {} of {} decisions",
        gate.len(),
        subjects.len() * purposes.len()
    );
    let per_pair = rest as f64 / pairs as f64;
    let per_subject = (first as f64 - per_pair * subjects.len() as f64) / subjects.len() as f64;
    Ok(json!({
        "name": "gate.memory_per_decision",
        "subjects": subjects.len(),
        "purposes": purposes.len(),
        "decisions_cached": gate.len(),
        "bytes_per_decision": figures::round1(per_pair),
        "bytes_per_subject_beyond_its_decisions": figures::round1(per_subject),
        "bytes_for_100k_decisions_mib": figures::round3(per_pair * 100_000.0 / 1_048_576.0),
        "note": "net heap allocated while a fresh gate fills (the default capacity is 100,000 decisions)",
    }))
}

/// A write on one consent replica, then a check on another: with the write's token the
/// check waits until that replica has applied it; without, it answers at once from its
/// cache (maybe stale). Latency of both, and how many answers missed the write.
async fn read_your_writes(
    mesh: &Mesh,
    writer: &pdm_client::ConsentClient,
    subject: &str,
) -> anyhow::Result<Value> {
    let replica = mesh.start_replica("consent").await?;
    let reader = PdmClient::builder()
        .endpoint("consent", format!("http://{}", replica.addr()))
        .client_certificates(mesh.certificate_dir(), TEST_CLIENT)
        .build()?
        .consent()?;
    let purpose = "product_analytics";
    let (mut with_token, mut without_token) = (Vec::new(), Vec::new());
    let (mut stale_with, mut stale_without) = (0, 0);
    for round in 0..ROUNDS * 2 {
        let written = if round % 2 == 0 {
            writer.grant(&grant(subject, purpose)).await?
        } else {
            writer.withdraw(subject, purpose, "bench").await?
        };
        let expected = round % 2 == 0;
        let t = Instant::now();
        let blind = reader.check(subject, purpose, None).await?;
        without_token.push(figures::ms(t.elapsed()));
        stale_without += usize::from(blind.allowed != expected);
        let t = Instant::now();
        let seen = reader.check(subject, purpose, Some(&written.token)).await?;
        with_token.push(figures::ms(t.elapsed()));
        stale_with += usize::from(seen.allowed != expected);
    }
    // Without a token, how long replica B keeps answering as before the write on A.
    let mut staleness = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let allowed = round % 2 == 0;
        if allowed {
            writer.grant(&grant(subject, purpose)).await?;
        } else {
            writer.withdraw(subject, purpose, "bench").await?;
        }
        let written = Instant::now();
        while reader.check(subject, purpose, None).await?.allowed != allowed {
            anyhow::ensure!(
                written.elapsed() < Duration::from_secs(10),
                "replica B never saw the write"
            );
        }
        staleness.push(figures::ms(written.elapsed()));
    }
    replica.stop().await?;
    let p = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        figures::round3(v[((v.len() - 1) as f64 * q) as usize])
    };
    Ok(json!({
        "name": "consent.read_your_writes_across_replicas",
        "rounds": ROUNDS * 2,
        "with_token_p50_ms": p(&mut with_token, 0.5),
        "with_token_p99_ms": p(&mut with_token, 0.99),
        "without_token_p50_ms": p(&mut without_token, 0.5),
        "without_token_p99_ms": p(&mut without_token, 0.99),
        "stale_answers_with_token": stale_with,
        "stale_answers_without_token": stale_without,
        "staleness_without_token_p50_ms": p(&mut staleness, 0.5),
        "staleness_without_token_p99_ms": p(&mut staleness, 0.99),
        "note": "a write on replica A, then CheckProcessing on replica B (consent.tail_interval_ms 500); staleness: from the write's answer until B's answer reflects it, B asked in a loop",
    }))
}

/// A grant of `purpose` by the benchmark.
fn grant(subject: &str, purpose: &str) -> Grant {
    Grant {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        policy_version: "2024-06-28".into(),
        text_hash: "0".repeat(64),
        actor: "bench".into(),
    }
}
