//! The telemetry service: usage and device events admitted only with the subject's
//! agreement to product analytics (or, logged out, the device's tracking choice) and
//! minimised on the way in, crash reports scrubbed of personal data and filed on
//! legitimate interests, and aggregates shown only with k distinct people behind them.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod gate;
pub mod migration;
pub mod settings;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    subject::v1::subject_data_service_server::SubjectDataServiceServer,
    telemetry::v1::telemetry_service_server::TelemetryServiceServer,
};
use pdm_runtime::{
    GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal, jobs::OnFailure,
    relationships::Relationships,
};
use tokio::{net::TcpListener, sync::Notify};

use crate::{
    api::TelemetryApi,
    domain::{geo::GeoDb, scrub::Scrubber},
    gate::ConsentGate,
    settings::TelemetrySettings,
    store::Store,
};

/// The service name: `pdm serve telemetry`, `[services.telemetry]`, `[telemetry]`.
pub const NAME: &str = "telemetry";

/// The telemetry service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Telemetry;

impl MeshService for Telemetry {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        &self,
        ctx: ServiceContext,
        listener: TcpListener,
        shutdown: ShutdownSignal,
    ) -> ServiceFuture {
        Box::pin(run(ctx, listener, shutdown))
    }
}

/// Serves the telemetry service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: TelemetrySettings = ctx.settings.checked()?;
    api::metrics::register();
    let geo = if settings.ip_database.is_empty() {
        GeoDb::default()
    } else {
        let csv = std::fs::read_to_string(&settings.ip_database).with_context(|| {
            format!(
                "telemetry.ip_database: cannot read {}",
                settings.ip_database
            )
        })?;
        GeoDb::parse(&csv).map_err(|e| anyhow::anyhow!("telemetry.ip_database: {e}"))?
    };
    let scrubber = Scrubber::new().context("telemetry")?;
    let consent = ConsentServiceClient::new(ctx.channel("consent")?);
    let relationships = Arc::new(Relationships::new(IdentityServiceClient::new(
        ctx.channel("identity")?,
    )));

    let mut server = GrpcServer::for_service(&ctx);
    let telemetry = server.slot();
    let subject_data = server.slot();
    server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let keys =
                pdm_runtime::key_store::open(&ctx.settings, NAME, &ctx.kek, &ready.db).await?;
            let store = Store::new(ready.db, keys);
            let gate = ConsentGate::new(consent, settings.fence_wait);
            gate.start(&ready.jobs);
            let erasures = Arc::new(Notify::new());
            let api = TelemetryApi::new(
                store,
                (gate, relationships),
                ctx.clock.clone(),
                settings,
                geo,
                scrubber,
                erasures,
            )
            .await?;
            // Erased subjects' rows are deleted in the background, picking up the stored
            // queue: safe to start again.
            let deleter = api.clone();
            ready
                .jobs
                .spawn("row deleter", OnFailure::Restart, move |stop| {
                    api::run_deleter(deleter.clone(), stop)
                });
            telemetry.fill(TelemetryServiceServer::new(api.clone()));
            subject_data.fill(SubjectDataServiceServer::new(api));
            Ok(())
        })
        .await
}
