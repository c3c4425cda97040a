//! Consent benchmarks: CheckProcessing against the no-op (the health check on the same
//! server stack), and BatchCheckProcessing decisions per second.

use std::time::Duration;

use pdm_proto::{
    consent::v1::{
        BatchCheckProcessingRequest, CheckItem, CheckProcessingRequest, GrantConsentRequest,
        Source, consent_service_client::ConsentServiceClient,
    },
    identity::v1::identity_service_client::IdentityServiceClient,
};
use pdm_testkit::Mesh;
use serde_json::{Value, json};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{CONCURRENCY, harness, load};

/// Subjects the benchmark spreads its checks over.
const SUBJECTS: usize = 200;
/// Turns the no-op and the check take, each running a slice of the measurement's time.
const ROUNDS: u32 = 4;
/// Pairs per BatchCheckProcessing call.
const BATCH: usize = 1000;

/// Runs the consent benchmarks.
pub async fn run(
    mesh: &Mesh,
    seconds: Duration,
    wanted: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let consent_channel = mesh.channel("consent");
    let mut identity = IdentityServiceClient::new(mesh.channel("identity"));
    let mut consent = ConsentServiceClient::new(consent_channel.clone());
    let mut subjects = Vec::with_capacity(SUBJECTS);
    for i in 0..SUBJECTS {
        let account = identity
            .create_account(harness::sample_account())
            .await?
            .into_inner()
            .account
            .map(|a| a.subject_id)
            .unwrap_or_default();
        if i % 2 == 0 {
            consent
                .grant_consent(GrantConsentRequest {
                    subject_id: account.clone(),
                    purpose: "marketing_email".into(),
                    source: Source::Api as i32,
                    policy_version: "2024-06-28".into(),
                    text_hash: "0".repeat(64),
                    actor: "bench".into(),
                    occurred_at: None,
                })
                .await?;
        }
        subjects.push(account);
    }
    // Warm the decision cache.
    for s in &subjects {
        consent
            .check_processing(CheckProcessingRequest {
                subject_id: s.clone(),
                purpose: "marketing_email".into(),
                ..Default::default()
            })
            .await?;
    }

    let mut rows = Vec::new();
    if wanted("consent.check_processing") {
        for c in CONCURRENCY {
            // The no-op and the check on the consent server's stack, taking turns in
            // ROUNDS slices: whatever else the machine does meanwhile falls on both alike.
            let health = HealthClient::new(consent_channel.clone());
            let noop_call = move || {
                let mut health = health.clone();
                async move {
                    health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .map(|_| ())
                }
            };
            let client = consent.clone();
            let subjects = std::sync::Arc::new(subjects.clone());
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let check_call = move || {
                let mut client = client.clone();
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let request = CheckProcessingRequest {
                    subject_id: subjects[i % subjects.len()].clone(),
                    purpose: "marketing_email".into(),
                    ..Default::default()
                };
                async move { client.check_processing(request).await.map(|_| ()) }
            };
            let slice = seconds / ROUNDS;
            let mut noop = load::Stats::default();
            let mut check = load::Stats::default();
            for _ in 0..ROUNDS {
                noop.merge(load::run(c, slice, noop_call.clone()).await);
                check.merge(load::run(c, slice, check_call.clone()).await);
            }
            let mut row = check.to_json("consent.check_processing", c);
            row["noop_throughput_per_s"] = json!((noop.throughput() * 10.0).round() / 10.0);
            row["noop_p99_us"] = noop.to_json("noop", c)["p99_us"].clone();
            row["throughput_ratio_vs_noop"] = json!(ratio(check.throughput(), noop.throughput()));
            row["p99_ratio_vs_noop"] = json!(ratio(
                row["p99_us"].as_f64().unwrap_or_default(),
                row["noop_p99_us"].as_f64().unwrap_or_default()
            ));
            rows.push(row);
        }
    }
    if wanted("consent.batch_check_processing") {
        let items: Vec<CheckItem> = (0..BATCH)
            .map(|i| CheckItem {
                subject_id: subjects[i % subjects.len()].clone(),
                purpose: if i % 3 == 0 {
                    "marketing_email"
                } else {
                    "product_analytics"
                }
                .into(),
            })
            .collect();
        for c in [1, 4] {
            let client = consent.clone();
            let request = BatchCheckProcessingRequest {
                items: items.clone(),
                ..Default::default()
            };
            let stats = load::run(c, seconds, move || {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.batch_check_processing(request).await.map(|_| ()) }
            })
            .await;
            let mut row = stats.to_json("consent.batch_check_processing", c);
            row["batch_size"] = json!(BATCH);
            row["decisions_per_s"] = json!((stats.throughput() * BATCH as f64).round());
            rows.push(row);
        }
    }
    Ok(rows)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        (a / b * 1000.0).round() / 1000.0
    }
}
