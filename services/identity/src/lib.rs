//! The identity service: accounts, profiles, sessions, billing contacts and support
//! tickets: the policy's "Information you provide to us". Personal fields are encrypted
//! at rest with a per-subject key; erasure deletes the rows and the key.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod hash_pool;
pub mod migration;
pub mod settings;
pub mod store;

use std::sync::Arc;

use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
};
use pdm_proto::{
    identity::v1::identity_service_server::IdentityServiceServer,
    subject::v1::subject_data_service_server::SubjectDataServiceServer,
};
use pdm_runtime::{GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal};
use tokio::net::TcpListener;

use crate::{api::IdentityApi, settings::IdentitySettings, store::Store};

/// The service name: `pdm serve identity`, `[services.identity]`, `[identity]`.
pub const NAME: &str = "identity";

/// The identity service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl MeshService for Identity {
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

/// Serves the identity service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: IdentitySettings = ctx.settings.checked()?;
    let mut server = GrpcServer::for_service(&ctx);
    let identity = server.slot();
    let subject_data = server.slot();
    server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let keys =
                pdm_runtime::key_store::open(&ctx.settings, NAME, &ctx.kek, &ready.db).await?;
            let store = Store::new(ready.db, keys);
            let adopted = store.adopt_archive_keys().await?;
            if adopted > 0 {
                tracing::info!(adopted, "moved billing archive keys into the key store");
            }
            let rights = match settings.deletion.as_str() {
                "local" => None,
                "rights" => Some(RightsServiceClient::new(ctx.channel("rights")?)),
                other => {
                    anyhow::bail!(
                        "identity.deletion: {other:?} is neither \"rights\" nor \"local\""
                    )
                }
            };
            let consent = ConsentServiceClient::new(ctx.channel("consent")?);
            let api =
                IdentityApi::new(store, Arc::clone(&ctx.clock), settings, rights, consent).await?;
            identity.fill(IdentityServiceServer::new(api.clone()));
            subject_data.fill(SubjectDataServiceServer::new(api));
            Ok(())
        })
        .await
}
