//! The incidents service: the register of personal-data breaches (GDPR/UK GDPR Art.
//! 33(5): every breach recorded, notified or not), each change a new version; per regime
//! the authority deadline (72 hours from awareness for GDPR and UK GDPR, from a
//! configurable regime table) and the phased notifications sent; the overdue ones, in a
//! listing and in `pdm_incidents_overdue`; and the Data Protection Officer's contact.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod migration;
pub mod settings;
pub mod store;

use std::sync::{Arc, OnceLock};

use pdm_proto::{
    incidents::v1::{
        assessments_service_server::AssessmentsServiceServer,
        incidents_service_server::IncidentsServiceServer,
    },
    transfers::v1::transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal};
use tokio::net::TcpListener;

use crate::{
    api::{IncidentsApi, assessments::AssessmentsApi},
    settings::IncidentsSettings,
    store::Store,
};

/// The service name: `pdm serve incidents`, `[services.incidents]`, `[incidents]`.
pub const NAME: &str = "incidents";

/// The incidents service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Incidents;

impl MeshService for Incidents {
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

/// Serves the incidents service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: IncidentsSettings = ctx.settings.checked()?;
    metrics::register();

    let mut server = GrpcServer::for_service(&ctx);
    let incidents = server.slot();
    let assessments = server.slot();
    // The overdue gauge, read at every scrape while the service runs.
    let scrape_hook = Arc::new(OnceLock::new());
    let scrape_hook_set = scrape_hook.clone();
    let reviews_hook = Arc::new(OnceLock::new());
    let reviews_hook_set = reviews_hook.clone();
    let served = server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let mut peers = std::collections::BTreeMap::new();
            for name in &settings.services {
                peers.insert(
                    name.clone(),
                    pdm_proto::subject::v1::subject_data_service_client::SubjectDataServiceClient::new(
                        ctx.channel(name)?,
                    ),
                );
            }
            let store = Store::new(ready.db);
            let reviews = AssessmentsApi::new(
                store.clone(),
                ctx.clock.clone(),
                TransfersServiceClient::new(ctx.channel("transfers")?),
            );
            let _ = reviews_hook_set.set(metrics::reviews_gauge(reviews.clone()));
            assessments.fill(AssessmentsServiceServer::new(reviews));
            let api = IncidentsApi::new(
                store,
                ctx.clock.clone(),
                settings.regimes,
                settings.dpo,
            )
            .with_peers(peers)
            .with_rights(
                pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(
                    ctx.channel("rights")?,
                ),
            )
            .with_identity(
                pdm_proto::identity::v1::identity_service_client::IdentityServiceClient::new(
                    ctx.channel("identity")?,
                ),
            );
            let _ = scrape_hook_set.set(metrics::overdue_gauge(api.clone()));
            incidents.fill(IncidentsServiceServer::new(api));
            Ok(())
        })
        .await;
    drop(scrape_hook);
    drop(reviews_hook);
    served
}
