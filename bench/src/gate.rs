//! The Rust client's consent gate (`pdm-client`): a cached decision answered in-process
//! (throughput on one task, and per-decision latency), and how long a withdrawal on the
//! server takes to reach a connected gate. Over mutual TLS as company client `testkit`,
//! against the mesh's consent service.

use std::time::{Duration, Instant};

use pdm_client::{ConsentGate, GateOptions, PdmClient, consent::Grant};
use pdm_testkit::{Mesh, TEST_CLIENT};
use serde_json::{Value, json};

use super::{figures, harness};

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
        consent
            .grant(&Grant {
                subject_id: subject.clone(),
                purpose: purpose.to_owned(),
                policy_version: "2024-06-28".into(),
                text_hash: "0".repeat(64),
                actor: "bench".into(),
            })
            .await?;
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
    results.push(read_your_writes(mesh, &consent, &subject).await?);
    Ok(results)
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
            writer
                .grant(&Grant {
                    subject_id: subject.to_owned(),
                    purpose: purpose.to_owned(),
                    policy_version: "2024-06-28".into(),
                    text_hash: "0".repeat(64),
                    actor: "bench".into(),
                })
                .await?
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
        "note": "a write on replica A, then CheckProcessing on replica B (consent.tail_interval_ms 500)",
    }))
}
