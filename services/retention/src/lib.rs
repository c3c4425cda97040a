//! The retention service: retention policies per data category (seeded from the privacy
//! policy, versioned, editable), legal holds, per-subject trigger events and schedules,
//! and purge runs across the mesh through every data-holding service's
//! `SubjectData.PurgeExpired`, on a schedule and on demand, one at a time across replicas.
//! Policy clause: "How long we keep your information".
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod api;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod migration;
pub mod purge;
pub mod settings;
pub mod store;

use pdm_proto::{
    retention::v1::retention_service_server::RetentionServiceServer,
    subject::v1::subject_data_service_client::SubjectDataServiceClient,
};
use pdm_runtime::{
    GrpcServer, MeshService, ServiceContext, ServiceFuture, ShutdownSignal, jobs::OnFailure,
    settings::SettingsError,
};
use tokio::net::TcpListener;

use crate::{
    api::RetentionApi,
    purge::{
        Runner, Target,
        scheduler::{self, Schedule},
    },
    settings::RetentionSettings,
    store::Store,
};

/// The service name: `pdm serve retention`, `[services.retention]`, `[retention]`.
pub const NAME: &str = "retention";

/// Most policies (categories).
pub const MAX_POLICIES: usize = 1000;
/// Most active legal holds (every run sends them all to every service).
pub const MAX_ACTIVE_HOLDS: u64 = 1000;
/// Longest description, reason or reference.
pub const MAX_TEXT: usize = 500;
/// Longest name of who acts.
pub const MAX_WHO: usize = 128;

/// The retention service, as the binary and the test kit run it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention;

impl MeshService for Retention {
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

/// Serves the retention service on `listener` until `shutdown` resolves.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let checked = ctx.settings.checked::<RetentionSettings>()?.resolve()?;
    metrics::register();
    let max_message = ctx.settings.server.max_message_bytes;
    let mut endpoints = Vec::with_capacity(checked.services.len());
    for name in &checked.services {
        let channel = ctx
            .channel_with_timeout(name, checked.call_timeout)
            .map_err(|_| SettingsError {
                problems: vec![(
                    "retention.services".to_owned(),
                    format!("{name} has no [services.{name}] settings"),
                )],
            })?;
        endpoints.push((name.clone(), channel));
    }

    let mut server = GrpcServer::for_service(&ctx);
    let retention = server.slot();
    let own_trail = server.access_trail();
    server
        .run::<migration::Migrator, _, _>(listener, shutdown, |ready| async move {
            let store = Store::new(ready.db);
            let overridden = store
                .seed_policies(&checked.policies, ctx.clock.now())
                .await
                .map_err(|e| anyhow::anyhow!("writing the seed policies: {e}"))?;
            for category in overridden {
                tracing::warn!(
                    category = %category,
                    "configured policy not applied: it was changed with UpsertPolicy since"
                );
            }
            let mut targets = Vec::with_capacity(endpoints.len());
            for (name, channel) in endpoints {
                let client = SubjectDataServiceClient::new(channel)
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message);
                targets.push(Target { name, client });
            }
            let runner = Runner::new(
                store.clone(),
                ctx.clock.clone(),
                targets,
                checked.lease,
                checked.call_timeout,
                own_trail,
            );
            // The scheduler stops when shutdown starts (a run in progress finishes on its own);
            // it reads what is due from the database, so it is safe to start again.
            if let Some(interval) = checked.interval {
                let schedule = Schedule {
                    interval,
                    retry_after: checked.retry_after,
                    tick: checked.tick,
                };
                let (runner, store, clock) = (runner.clone(), store.clone(), ctx.clock.clone());
                ready
                    .jobs
                    .spawn("purge scheduler", OnFailure::Restart, move |stop| {
                        scheduler::run(runner.clone(), store.clone(), clock.clone(), schedule, stop)
                    });
            }
            retention.fill(RetentionServiceServer::new(RetentionApi::new(
                store,
                ctx.clock.clone(),
                runner,
            )));
            Ok(())
        })
        .await
}
