//! The transfers service: the register of recipients, the mechanisms that make
//! international transfers lawful (adequacy, SCCs, IDTA, BCR, derogations) with their
//! impact assessments, the authorisation of every transfer, and the transfer log.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod migration;
pub mod settings;
pub mod store;

use std::sync::Arc;

use pdm_crypto::Keyring;
use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    subject::v1::subject_data_service_server::SubjectDataServiceServer,
    transfers::v1::transfers_service_server::TransfersServiceServer,
};
use pdm_runtime::{
    GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal,
    relationships::Relationships,
};
use tokio::net::TcpListener;

use crate::{api::TransfersApi, settings::TransfersSettings, store::Store};

/// The service name: `pdm serve transfers`, `[services.transfers]`, `[transfers]`.
pub const NAME: &str = "transfers";

/// Prefix of the pseudonym that replaces an erased subject's id in the log.
pub const ERASED_PREFIX: &str = "erased:";

/// The transfers service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfers;

impl MeshService for Transfers {
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

/// Serves the transfers service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: TransfersSettings = ctx.settings.checked()?;
    let adequacy = domain::adequacy::lists(&settings.adequacy).map_err(anyhow::Error::msg)?;
    let consent = ConsentServiceClient::new(ctx.channel("consent")?);
    let relationships = Arc::new(Relationships::new(IdentityServiceClient::new(
        ctx.channel("identity")?,
    )));

    let mut server = GrpcServer::for_service(&ctx);
    let transfers = server.slot();
    let subject_data = server.slot();
    server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let api = TransfersApi::new(
                Store::new(ready.db),
                ctx.clock.clone(),
                adequacy,
                consent,
                Keyring::new(&ctx.kek),
                relationships,
            );
            transfers.fill(TransfersServiceServer::new(api.clone()));
            subject_data.fill(SubjectDataServiceServer::new(api));
            Ok(())
        })
        .await
}
