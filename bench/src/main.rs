//! `pdm-bench`: in-process benchmarks over real gRPC on loopback, printed as JSON.
//! Each service adds its measurements here, next to the no-op baseline (the standard
//! health check, served by the same server stack) measured in the same run. The services
//! run on the test kit's mesh (`pdm_testkit::TestMesh`, see [`harness`]); nothing of this is
//! in the shipped `pdm` binary.
// Only the counting allocator (alloc.rs) implements an unsafe trait, delegating to System.
#![deny(unsafe_code)]

mod alloc;
mod harness;
mod load;
mod postgres;

mod consent;
mod consent_growth;
mod dsr;
mod figures;
mod gate;
mod growth;
mod identity;
mod identity_size;
mod rights;
mod telemetry;
mod web;

use clap::Parser;
use pdm_proto::identity::v1::{GetAccountRequest, identity_service_client::IdentityServiceClient};
use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// pdm-bench — the benchmarks of the personal-data mesh, as JSON on stdout.
#[derive(Debug, Parser)]
#[command(name = "pdm-bench", version, about)]
struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Only benchmarks whose name contains this.
    #[arg(long)]
    filter: Option<String>,
}

fn main() {
    let args = BenchArgs::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pdm-bench: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run(args)) {
        eprintln!("pdm-bench: {err:#}");
        std::process::exit(1);
    }
}

#[global_allocator]
static ALLOCATOR: alloc::CountingAllocator = alloc::CountingAllocator;

/// Concurrency levels every RPC benchmark runs at.
const CONCURRENCY: [usize; 3] = [1, 16, 64];

/// Runs the benchmarks and prints one JSON document.
async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let seconds = std::time::Duration::from_secs_f64(args.seconds.max(0.1));
    let wanted = |name: &str| args.filter.as_deref().is_none_or(|f| name.contains(f));
    harness::quiet()?;
    let mesh = harness::start(&["identity", "consent"], Vec::new()).await?;
    let channel = mesh.channel("identity");
    let mut results = Vec::new();

    if wanted("noop.health_check") {
        for c in CONCURRENCY {
            let health = HealthClient::new(channel.clone());
            let stats = load::run(c, seconds, move || {
                let mut health = health.clone();
                async move {
                    health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .map(|_| ())
                }
            })
            .await;
            results.push(stats.to_json("noop.health_check", c));
        }
    }

    if wanted("identity.get_account") {
        let mut identity = IdentityServiceClient::new(channel.clone());
        let subject_id = identity
            .create_account(harness::sample_account())
            .await?
            .into_inner()
            .account
            .map(|a| a.subject_id)
            .unwrap_or_default();
        for c in CONCURRENCY {
            let identity = identity.clone();
            let subject_id = subject_id.clone();
            let stats = load::run(c, seconds, move || {
                let mut identity = identity.clone();
                let request = GetAccountRequest {
                    subject_id: subject_id.clone(),
                };
                async move { identity.get_account(request).await.map(|_| ()) }
            })
            .await;
            results.push(stats.to_json("identity.get_account", c));
        }
    }

    if wanted("identity.authenticate") || wanted("identity.sign_in_memory") {
        results.extend(identity::run(channel.clone(), seconds).await?);
    }

    if wanted("consent.") {
        results.extend(consent::run(&mesh, seconds, &wanted).await?);
    }

    if wanted("gate.") {
        results.extend(gate::run(&mesh, seconds).await?);
    }

    harness::stop(mesh).await;

    // On PostgreSQL, in a database of its own (or reported as skipped).
    results.extend(telemetry::run(seconds, &wanted).await?);
    results.extend(rights::run(&wanted).await?);
    results.extend(dsr::run(&wanted).await?);
    results.extend(growth::run(&wanted).await?);
    results.extend(consent_growth::run(&wanted).await?);
    results.extend(identity_size::run(&wanted).await?);
    results.extend(web::run(&wanted).await?);

    let report = json!({
        "pdm_version": env!("CARGO_PKG_VERSION"),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "seconds_per_measurement": seconds.as_secs_f64(),
        "database": "sqlite (telemetry.*, scale.growth.*, rights.access and rights.erasure: postgresql; rights.throughput and rights.burst: both)",
        "benchmarks": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
