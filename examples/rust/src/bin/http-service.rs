//! `http-service`: usage events over HTTP/1, refused with 403 for subjects who did not
//! allow the purpose (see `pdm_examples::http_service`).
//!
//! Settings: `EXAMPLE_LISTEN` (default 127.0.0.1:8090), `EXAMPLE_PURPOSE` (default
//! product_analytics), `EXAMPLE_GRACE_MS` (default 5000); the pdm client's from the
//! environment (`PDM_ENDPOINT_CONSENT`, `PDM_CERT_DIR` and `PDM_CLIENT_NAME`, …). A bad
//! setting exits with 64; SIGTERM or Ctrl-C drains and exits.

use std::process::ExitCode;

use pdm_client::{ConsentGate, GateOptions, PdmClient};
use pdm_examples::http_service::{self, Config};

const BAD_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let consent = match PdmClient::from_env().and_then(|pdm| pdm.consent()) {
        Ok(consent) => consent,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("http-service: cannot listen on {}: {err}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let gate = ConsentGate::start(consent, GateOptions::default());
    tracing::info!(addr = %config.listen, purpose = %config.purpose, "http-service listening");
    let app = http_service::app(gate, &config.purpose);
    http_service::run(listener, app, shutdown_signal(), config.grace).await;
    tracing::info!("http-service stopped");
    ExitCode::SUCCESS
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: draining connections");
}
