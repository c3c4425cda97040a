//! The rights service: data-subject requests with verification, legal deadlines and a
//! durable fan-out to every data-holding service; access packages that answer the
//! policy's six questions; erasure that finishes even through crashes.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod mailbox;
pub mod metrics;
pub mod migration;
pub mod outbox;
pub mod package;
pub mod peers;
pub mod recorder;
pub mod refuse;
pub mod sealed;
pub mod settings;
pub mod smtp;
pub mod store;
pub mod worker;

use std::sync::Arc;

use pdm_crypto::Keyring;
use pdm_proto::rights::v1::rights_service_server::RightsServiceServer;
use pdm_runtime::{
    GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal, jobs::OnFailure,
};
use tokio::{
    net::TcpListener,
    sync::{Notify, broadcast},
};

use crate::{
    api::RightsApi,
    outbox::{Outbox, Sink},
    peers::Peers,
    settings::RightsSettings,
    store::Store,
    worker::Worker,
};

/// The service name: `pdm serve rights`, `[services.rights]`, `[rights]`.
pub const NAME: &str = "rights";

/// The rights service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rights;

impl MeshService for Rights {
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

/// Serves the rights service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: RightsSettings = ctx.settings.checked()?;
    // The DPO named in breach notices and access packages: the register's own setting.
    let dpo = pdm_runtime::dpo::Dpo::from_settings(&ctx.settings)?;
    metrics::register();
    let peers = Peers::new(&ctx, &settings.data_services())?;
    let sink = Sink::configure(&settings, &ctx.settings)?;
    let port = listener.local_addr()?.port();

    let mut server = GrpcServer::for_service(&ctx);
    let rights = server.slot();
    // The queue gauges, read at every scrape while the service runs.
    let scrape_hook = Arc::new(std::sync::OnceLock::new());
    let scrape_hook_set = scrape_hook.clone();
    let trail = server.access_trail();
    let served = server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let keys =
                pdm_runtime::key_store::open(&ctx.settings, NAME, &ctx.kek, &ready.db).await?;
            let store = Store::new(ready.db, keys);
            let adopted = store.adopt_row_keys().await?;
            if adopted > 0 {
                tracing::info!(adopted, "moved request keys into the key store");
            }
            let _ = scrape_hook_set.set(metrics::queue_gauges(store.clone(), ctx.clock.clone()));
            let keyring = Keyring::new(&ctx.kek);
            let wake = Arc::new(Notify::new());
            let (changes, _) = broadcast::channel(256);
            let outbox = Outbox::new(store.clone(), keyring.clone(), sink);
            let worker = Worker {
                store,
                peers,
                keyring,
                clock: ctx.clock.clone(),
                settings,
                wake,
                changes,
                outbox,
                trail,
                next_trail_purge: Arc::new(std::sync::Mutex::new(
                    chrono::DateTime::<chrono::Utc>::MIN_UTC,
                )),
                owner: worker::replica_id(port).into(),
            };
            let api = RightsApi::new(&worker).with_dpo(dpo);
            // The worker finishes its tasks in flight when the service stops (the skeleton
            // waits for it); every task is idempotent per request, so it is safe to start again.
            ready.jobs.spawn("worker", OnFailure::Restart, move |stop| {
                worker.clone().run(stop)
            });
            rights.fill(RightsServiceServer::new(api));
            Ok(())
        })
        .await;
    drop(scrape_hook);
    served
}
