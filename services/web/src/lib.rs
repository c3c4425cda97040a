//! The privacy centre: server-rendered pages where people sign in, see and correct their
//! profile, make their privacy choices, opt out of messages and delete their account. An
//! HTTP front of the mesh: it calls identity and consent over gRPC with mutual TLS as its
//! own caller (`spiffe://<trust domain>/svc/web`) and owns only its sessions table.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod app;
pub mod domain;
mod mesh;
pub mod operators_admin;
mod pages;
pub mod security;
pub mod settings;
pub mod store;
mod views;

use std::net::{IpAddr, SocketAddr};

use anyhow::Context as _;
use pdm_runtime::{
    MeshService, ServiceContext, ServiceFuture, Settings, ShutdownSignal,
    db::DatabaseTarget,
    jobs::{Jobs, OnFailure},
};
use sea_orm_migration::MigratorTrait as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{settings::WebSettings, store::Sessions};

/// The service name: `pdm serve web`, `[web]`, its certificate `svc/web`.
pub const NAME: &str = "web";

/// The web front, as the binary runs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Web;

impl MeshService for Web {
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

/// The address the web front listens on: `server.host` and `web.port`.
pub fn listen_addr(settings: &Settings) -> anyhow::Result<SocketAddr> {
    let web: WebSettings = settings.checked()?;
    let host: IpAddr = settings
        .server
        .host
        .parse()
        .context("server.host: not an IP address")?;
    Ok(SocketAddr::new(host, web.port))
}

/// Where the sessions table lives: `web.database_url`, else `database.url` (schema
/// `web`), else `<data_dir>/web.db` — the services' own rules.
pub fn database_target(settings: &Settings) -> anyhow::Result<DatabaseTarget> {
    let web: WebSettings = settings.checked()?;
    let url = if web.database_url.is_empty() {
        settings.database.url.clone()
    } else {
        web.database_url.clone()
    };
    if url.is_empty() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let file = settings.data_dir.join(format!("{NAME}.db"));
        return Ok(DatabaseTarget::Sqlite {
            url: format!("sqlite://{}?mode=rwc", file.display()),
        });
    }
    if url.starts_with("sqlite:") {
        return Ok(DatabaseTarget::Sqlite { url });
    }
    let schema = web.database_url.is_empty().then(|| NAME.to_owned());
    Ok(DatabaseTarget::Postgres { url, schema })
}

/// Serves the pages on `listener` until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let settings: WebSettings = ctx.settings.checked()?;
    let target = database_target(&ctx.settings)?;
    let db = pdm_runtime::db::connect(&ctx.settings, &target).await?;
    store::migration::Migrator::up(&db, None)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "migrations failed: {}",
                pdm_runtime::error::db_error_kind(&e)
            )
        })?;
    tracing::info!(service = NAME, database = %target.describe(), "database ready");
    let sessions = Sessions::new(
        db.clone(),
        chrono::Duration::minutes(i64::from(settings.session_idle_minutes)),
        chrono::Duration::hours(i64::from(settings.session_absolute_hours)),
    );
    let every = std::time::Duration::from_secs(u64::from(settings.housekeeping_secs));
    let (swept, clock) = (sessions.clone(), ctx.clock.clone());
    let mesh = mesh::Mesh::connect(&ctx)?;
    let keyring = pdm_crypto::Keyring::new(&ctx.kek);
    let operators = store::operators::Operators::new(
        db.clone(),
        chrono::Duration::minutes(i64::from(settings.session_idle_minutes)),
        chrono::Duration::hours(i64::from(settings.session_absolute_hours)),
    );
    let state = app::AppState::new(
        settings,
        sessions,
        mesh,
        ctx.clock.clone(),
        keyring,
        operators,
    );
    let router = app::router(state);
    let addr = listener.local_addr()?;
    // Expired sessions and packages go on a timer too, not only when someone next signs in
    // or downloads: a package kept for a person who never comes back was kept for good.
    let jobs = Jobs::new(NAME, CancellationToken::new());
    jobs.spawn("housekeeping", OnFailure::Restart, move |stop| {
        housekeeping(swept.clone(), clock.clone(), every, stop)
    });
    tracing::info!(service = NAME, %addr, "serving http");
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving http");
    if !jobs.drain(ctx.settings.server.grace_period()).await {
        tracing::warn!(
            service = NAME,
            "housekeeping still running at the end of the grace period"
        );
    }
    served
}

/// Deletes expired sessions and packages now and every `every`, until `stop`.
async fn housekeeping(
    sessions: Sessions,
    clock: pdm_runtime::SharedClock,
    every: std::time::Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = clock.now();
        if let Err(err) = sessions.purge(now).await {
            tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "deleting expired sessions failed; will retry");
        }
        match sessions.delete_expired_packages(now).await {
            Ok(0) => {}
            Ok(packages) => tracing::info!(packages, "expired packages deleted"),
            Err(err) => {
                tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "deleting expired packages failed; will retry");
            }
        }
    }
}
