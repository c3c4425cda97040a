//! The transfers service: the register of recipients, the mechanisms that make
//! international transfers lawful (adequacy, SCCs, IDTA, BCR, derogations) with their
//! impact assessments, the authorisation of every transfer, and the transfer log.
#![forbid(unsafe_code)]

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
    Deferred, GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal, db,
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
    let settings: TransfersSettings = ctx.settings.section(NAME)?;
    let adequacy = domain::adequacy::lists(&settings.adequacy).map_err(anyhow::Error::msg)?;
    let max_message = ctx.settings.server.max_message_bytes;
    let consent = ConsentServiceClient::new(ctx.channel("consent")?);
    let relationships = Arc::new(Relationships::new(IdentityServiceClient::new(
        ctx.channel("identity")?,
    )));

    let transfers = Deferred::new();
    let subject_data = Deferred::new();
    let server = GrpcServer::for_service(&ctx)
        .with_service(transfers.clone())
        .with_service(subject_data.clone());
    let prepare = async move {
        let db = db::connect_and_migrate::<migration::Migrator>(&ctx.settings, NAME).await?;
        let api = TransfersApi::new(
            Store::new(db.clone()),
            ctx.clock.clone(),
            adequacy,
            consent,
            Keyring::new(&ctx.kek),
            relationships,
        );
        transfers.set(
            TransfersServiceServer::new(api.clone())
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
        subject_data.set(
            SubjectDataServiceServer::new(api)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
        Ok(db)
    };
    server.serve(listener, shutdown, prepare).await
}
