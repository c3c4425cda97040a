//! The consent service: the purpose catalogue, an append-only consent ledger with proof,
//! legal bases per region, restriction, objection, marketing opt-outs and "do not sell or
//! share", and processing decisions served from memory.
#![forbid(unsafe_code)]

pub mod api;
pub mod cache;
pub mod domain;
pub mod error;
pub mod ledger;
pub mod migration;
pub mod settings;
pub mod store;
pub mod subjects;

use std::{sync::Arc, time::Duration};

use pdm_crypto::Keyring;
use pdm_proto::{
    consent::v1::consent_service_server::ConsentServiceServer,
    identity::v1::identity_service_client::IdentityServiceClient,
    subject::v1::subject_data_service_server::SubjectDataServiceServer,
};
use pdm_runtime::{
    Deferred, GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal, db,
    relationships::Relationships,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use subjects::ERASED_PREFIX;

use crate::{
    api::{ConsentApi, Links, Parts},
    cache::DecisionCache,
    domain::catalogue::Catalogue,
    ledger::Ledger,
    settings::ConsentSettings,
    store::Store,
    subjects::Subjects,
};

/// The service name: `pdm serve consent`, `[services.consent]`, `[consent]`.
pub const NAME: &str = "consent";

/// The consent service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consent;

impl MeshService for Consent {
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

/// Serves the consent service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: ConsentSettings = ctx.settings.section(NAME)?;
    settings.validate()?;
    let catalogue = Arc::new(Catalogue::new(&settings.purposes).map_err(anyhow::Error::msg)?);
    let max_message = ctx.settings.server.max_message_bytes;
    let identity = IdentityServiceClient::new(ctx.channel("identity")?);
    let relationships = Arc::new(Relationships::new(identity.clone()));

    // Streams (WatchConsentChanges) end when shutdown starts, so the drain is quick.
    let stop = CancellationToken::new();
    let stop_on_shutdown = stop.clone();
    let shutdown = async move {
        shutdown.await;
        stop_on_shutdown.cancel();
    };

    let consent = Deferred::new();
    let subject_data = Deferred::new();
    let server = GrpcServer::for_service(&ctx)
        .with_service(consent.clone())
        .with_service(subject_data.clone());

    let prepare = async move {
        let db = db::connect_and_migrate::<migration::Migrator>(&ctx.settings, NAME).await?;
        let store = Store::new(db.clone());
        let cache = Arc::new(DecisionCache::new(
            settings.cache_capacity,
            chrono::Duration::seconds(i64::try_from(settings.region_ttl_secs).unwrap_or(i64::MAX)),
            chrono::Duration::seconds(i64::try_from(settings.unknown_ttl_secs).unwrap_or(i64::MAX)),
        ));
        let keyring = Keyring::new(&ctx.kek);
        let subjects = Subjects::new(
            store.clone(),
            cache.clone(),
            catalogue.clone(),
            Some(identity),
            keyring.clone(),
            chrono::Duration::seconds(i64::try_from(settings.region_ttl_secs).unwrap_or(i64::MAX)),
        );
        let ledger = Ledger::start(
            store.clone(),
            cache,
            Duration::from_millis(settings.tail_interval_ms.max(10)),
            stop.clone(),
        )
        .await?;
        let api = ConsentApi::new(Parts {
            store,
            subjects,
            catalogue,
            clock: ctx.clock.clone(),
            ledger,
            stop,
            relationships,
            links: Links {
                index: keyring.blind_index().clone(),
                validity: chrono::Duration::days(i64::from(settings.unsubscribe_link_days)),
            },
        });
        consent.set(
            ConsentServiceServer::new(api.clone())
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
