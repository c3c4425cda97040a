//! Sign-in: argon2id on identity's bounded hashing pool. Latency at each concurrency, and
//! the process's memory (RSS from `/proc/self/status`) before, at the peak of 64
//! concurrent sign-ins, and after the pool has been idle: bounded, and back near idle.

use std::time::Duration;

use pdm_proto::identity::v1::{
    AuthenticateRequest, identity_service_client::IdentityServiceClient,
};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{
    CONCURRENCY,
    figures::{round1, round3},
    harness, load,
};

/// Hashing workers give their memory back after 10 s idle.
const IDLE_RELEASE: Duration = Duration::from_secs(12);

/// A line of `/proc/self/status` in MiB (`VmRSS`: now; `VmHWM`: the peak).
fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resets the peak (`VmHWM`) to the current RSS.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The sign-in benchmarks.
pub async fn run(channel: Channel, seconds: Duration) -> anyhow::Result<Vec<Value>> {
    let mut identity = IdentityServiceClient::new(channel);
    let account = harness::sample_account();
    let request = AuthenticateRequest {
        email: account.email.clone(),
        password: account.password.clone(),
    };
    identity.create_account(account).await?;
    let mut results = Vec::new();
    tokio::time::sleep(IDLE_RELEASE).await;
    let idle = memory_mib("VmRSS");
    let peak_reset = reset_peak();
    for c in CONCURRENCY {
        let identity = identity.clone();
        let request = request.clone();
        let stats = load::run(c, seconds, move || {
            let mut identity = identity.clone();
            let request = request.clone();
            async move { identity.authenticate(request).await.map(|_| ()) }
        })
        .await;
        results.push(stats.to_json("identity.authenticate", c));
    }
    let peak = memory_mib("VmHWM");
    tokio::time::sleep(IDLE_RELEASE).await;
    let after = memory_mib("VmRSS");
    results.push(json!({
        "name": "identity.sign_in_memory",
        "concurrency": CONCURRENCY.iter().max(),
        "note": "whole bench process (identity and consent in process); the target is a peak under 256 MiB",
        "rss_idle_mib": round1(idle),
        "rss_peak_mib": peak_reset.then(|| round1(peak)),
        "rss_after_idle_mib": round1(after),
        "peak_over_idle_ratio": if peak_reset && idle > 0.0 { round3(peak / idle) } else { 0.0 },
    }));
    Ok(results)
}
