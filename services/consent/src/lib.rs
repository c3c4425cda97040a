//! The consent service: the purpose catalogue, an append-only consent ledger with proof,
//! legal bases per region, restriction, objection, marketing opt-outs and "do not sell or
//! share", and processing decisions served from memory.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

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
    GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal,
    relationships::Relationships,
};
use tokio::net::TcpListener;

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
    let settings: ConsentSettings = ctx.settings.checked()?;
    api::metrics::register();
    let catalogue = Arc::new(Catalogue::new(&settings.purposes).map_err(anyhow::Error::msg)?);
    let identity = IdentityServiceClient::new(ctx.channel("identity")?);
    let relationships = Arc::new(Relationships::new(identity.clone()));

    let mut server = GrpcServer::for_service(&ctx);
    let consent = server.slot();
    let subject_data = server.slot();
    server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let store = Store::new(ready.db);
            let cache = Arc::new(DecisionCache::new(
                settings.cache_capacity,
                chrono::Duration::from_std(settings.region_ttl).unwrap_or(chrono::Duration::MAX),
                chrono::Duration::from_std(settings.unknown_ttl).unwrap_or(chrono::Duration::MAX),
            ));
            let keyring = Keyring::new(&ctx.kek);
            let subjects = Subjects::new(
                store.clone(),
                cache.clone(),
                catalogue.clone(),
                Some(identity),
                keyring.clone(),
                chrono::Duration::from_std(settings.region_ttl).unwrap_or(chrono::Duration::MAX),
            );
            // Streams (WatchConsentChanges) end when shutdown starts, so the drain is quick.
            let stop = ready.stopping;
            let ledger = Ledger::start(
                store.clone(),
                cache,
                settings.tail_interval.max(Duration::from_millis(10)),
                &ready.jobs,
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
                token_wait: settings.token_wait,
            });
            consent.fill(ConsentServiceServer::new(api.clone()));
            subject_data.fill(SubjectDataServiceServer::new(api));
            Ok(())
        })
        .await
}
