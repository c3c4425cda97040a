//! The skeleton every service starts from: health and reflection, the layer stack, a
//! readiness gate while migrations run, a database liveness check, supervised background
//! jobs, and a graceful drain.
//!
//! A mesh service declares its gRPC servers ([`GrpcServer::slot`], so the port answers
//! health checks before the database is ready), its migrator and its background jobs, and
//! hands [`GrpcServer::run`] what to do once the database is migrated. The skeleton
//! applies the message limits, adds the access trail's migrations, and owns the shutdown:
//! health is `NOT_SERVING` until the service is ready, whenever the database stops
//! answering or a job it cannot do without has died; on shutdown [`GrpcServer::stopping`]
//! is cancelled (streams end, jobs stop), health turns `NOT_SERVING`, new connections
//! stop, in-flight calls get `server.grace_period_ms` to finish, and the jobs as long
//! again.

use std::{
    convert::Infallible,
    future::{Future, ready},
    io,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use pdm_proto::audit::v1::audit_service_server::AuditServiceServer;
use sea_orm::DatabaseConnection;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    task::JoinHandle,
};
use tokio_stream::StreamExt as _;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{
    body::Body,
    server::NamedService,
    service::RoutesBuilder,
    transport::{Server, server::Connected},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Service, ServiceExt};

use pdm_tls::incoming::incoming;

use pdm_access_trail::{
    Seal, Trail,
    keys::AuditKeys,
    layer::AuditLayer,
    migration::WithAccessTrail,
    service::AuditApi,
    store::{self, Resealed},
};

use crate::{
    SystemClock,
    clock::SharedClock,
    jobs::Jobs,
    layers::{
        BoxFuture,
        authz::AuthorizeLayer,
        bad_body::BadBodyLayer,
        catch_panic::CatchPanicLayer,
        load_shed::LoadShedLayer,
        metrics::MetricsLayer,
        rate_limit::{Limits, RateLimitLayer},
        timeout::TimeoutLayer,
        trace::TraceLayer,
    },
    security::Security,
    service::ServiceContext,
    settings::ServerSettings,
    slot::Slot,
    witnessing,
};

/// A gRPC service that answers `UNAVAILABLE` until it is [`Deferred::set`], so a server
/// can listen (and answer health checks) while its database is being prepared.
#[derive(Debug)]
pub struct Deferred<S> {
    cell: Arc<OnceLock<S>>,
}

impl<S> Clone for Deferred<S> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
        }
    }
}

impl<S> Default for Deferred<S> {
    fn default() -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
        }
    }
}

impl<S> Deferred<S> {
    /// Not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the service answer. Later calls are ignored.
    pub fn set(&self, service: S) {
        let _ = self.cell.set(service);
    }
}

impl<S: NamedService> NamedService for Deferred<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Deferred<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.cell.get() {
            Some(service) => Box::pin(service.clone().oneshot(request)),
            None => Box::pin(ready(Ok(tonic::Status::unavailable(
                "service starting: database not ready yet",
            )
            .into_http()))),
        }
    }
}

/// One service's gRPC server: its routes plus health and reflection.
pub struct GrpcServer {
    label: &'static str,
    settings: ServerSettings,
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    security: Option<Arc<Security>>,
    health_addr: Option<std::net::SocketAddr>,
    audit: Option<AuditParts>,
    trail: Arc<OnceLock<Trail>>,
    clock: SharedClock,
    /// Cancelled when shutdown begins.
    stopping: CancellationToken,
    jobs: Jobs,
    max_message_bytes: usize,
}

/// What a service's start-up gets once its database is migrated ([`GrpcServer::run`]).
#[derive(Debug, Clone)]
pub struct Ready {
    /// The service's database, migrated (access trail included).
    pub db: DatabaseConnection,
    /// Where its background jobs run, supervised.
    pub jobs: Jobs,
    /// Cancelled when shutdown begins: streams end on it.
    pub stopping: CancellationToken,
}

/// The access trail of a mesh service: its API, filled in when the database is ready,
/// and the context its witnessing job calls the mesh with.
struct AuditParts {
    api: Deferred<AuditServiceServer<AuditApi>>,
    ctx: ServiceContext,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("label", &self.label)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// The service's own access trail, set once its database is ready: for a background
    /// job that applies the trail's retention rule in a service that serves no
    /// `PurgeExpired` of its own (rights, retention).
    pub fn access_trail(&self) -> Arc<OnceLock<Trail>> {
        self.trail.clone()
    }

    /// A plaintext server without caller checks, for the service called `label` (used
    /// in logs). Services of the mesh use [`GrpcServer::for_service`].
    pub fn new(label: &'static str, settings: &ServerSettings) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        let stopping = CancellationToken::new();
        Self {
            jobs: Jobs::new(label, stopping.child_token()),
            stopping,
            max_message_bytes: settings.max_message_bytes,
            label,
            settings: settings.clone(),
            routes,
            health,
            names: Vec::new(),
            security: None,
            health_addr: None,
            audit: None,
            trail: Arc::new(OnceLock::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The server of a mesh service: mutual TLS with the service's certificate (unless TLS
    /// is off), the caller policy, per-caller rate limits, the access trail (its
    /// `AuditService` served beside the service's own), and a plaintext health-only port
    /// for probes when one is configured. [`GrpcServer::run`] adds the trail's migrations to
    /// the service's migrator.
    pub fn for_service(ctx: &ServiceContext) -> Self {
        let api = Deferred::new();
        let mut server = Self::new(ctx.name, &ctx.settings.server).with_service(api.clone());
        server.audit = Some(AuditParts {
            api,
            ctx: ctx.clone(),
        });
        server.clock = ctx.clock.clone();
        server.security = Some(ctx.security.clone());
        server.health_addr = ctx.settings.service(ctx.name).ok().and_then(|s| {
            let host: std::net::IpAddr = ctx.settings.server.host.parse().ok()?;
            (s.health_port != 0).then(|| std::net::SocketAddr::new(host, s.health_port))
        });
        server
    }

    /// Declares a gRPC server of the service, answering `UNAVAILABLE` until its slot is
    /// filled (once the database is ready), then with messages bounded by
    /// `server.max_message_bytes`; its health status follows the server's readiness.
    pub fn slot<S>(&mut self) -> Slot<S>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let deferred = Deferred::new();
        self.names.push(S::NAME);
        self.routes.add_service(deferred.clone());
        Slot::new(deferred, self.max_message_bytes)
    }

    /// The service's background jobs (also handed to [`GrpcServer::run`]'s `ready`).
    pub fn jobs(&self) -> Jobs {
        self.jobs.clone()
    }

    /// Cancelled as soon as shutdown begins: long streams end on it.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Connects to and migrates the service's database with its migrator `M` (the access
    /// trail's migrations added: [`WithAccessTrail`]), hands it to `ready`, which fills the
    /// slots and spawns the jobs, then serves until `shutdown` resolves (see
    /// [`GrpcServer::serve`]).
    pub async fn run<M, F, Fut>(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
        ready: F,
    ) -> anyhow::Result<()>
    where
        M: sea_orm_migration::MigratorTrait,
        F: FnOnce(Ready) -> Fut + Send,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        let Some(audit) = &self.audit else {
            anyhow::bail!(
                "{}: run is for mesh services (GrpcServer::for_service)",
                self.label
            );
        };
        let settings = audit.ctx.settings.clone();
        let name = audit.ctx.name;
        let parts = (self.jobs.clone(), self.stopping.clone());
        let prepare = async move {
            let db = crate::db::connect_and_migrate::<WithAccessTrail<M>>(&settings, name).await?;
            let (jobs, stopping) = parts;
            ready(Ready {
                db: db.clone(),
                jobs,
                stopping,
            })
            .await?;
            Ok(db)
        };
        self.serve(listener, shutdown, prepare).await
    }

    /// Adds a gRPC service; its health status follows the server's readiness.
    pub fn with_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// The health reporter, for services that report more than readiness.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves until `shutdown` resolves. `prepare` connects and migrates the database and
    /// fills the [`Deferred`] services; health turns `SERVING` when it succeeds. If it
    /// fails, the server stops and the error is returned.
    pub async fn serve<P>(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
        prepare: P,
    ) -> anyhow::Result<()>
    where
        P: Future<Output = anyhow::Result<DatabaseConnection>> + Send,
    {
        self.set_status(ServingStatus::NotServing).await;
        self.add_reflection()?;

        let stop = CancellationToken::new();
        let (server_tls, trust_domain, policy, plaintext, limits) = match &self.security {
            Some(security) => {
                let tls = security.server_tls(self.label)?;
                if tls.is_none() {
                    tracing::warn!(
                        service = self.label,
                        "serving in plaintext (tls.enabled = false): callers are named by the sidecar's header, believed from loopback only"
                    );
                }
                (
                    tls,
                    security.trust_domain().unwrap_or_default().to_owned(),
                    Some(security.policy()),
                    security.plaintext(),
                    security.limits(),
                )
            }
            None => (
                None,
                String::new(),
                None,
                None,
                Arc::new(Limits::unlimited()),
            ),
        };
        if let Some(addr) = self.health_addr {
            self.serve_health(addr, stop.clone()).await?;
        }
        // Connections are served on tasks of their own: after the grace period they are
        // severed through `sever`, which ends every call still running on them.
        let sever = CancellationToken::new();
        let incoming = incoming(listener, server_tls, trust_domain, stop.clone()).map({
            let sever = sever.clone();
            move |accepted| accepted.map(|io| Severable::new(io, &sever))
        });
        let routes = std::mem::take(&mut self.routes).routes();
        let server = Server::builder()
            .layer(TraceLayer::new(self.label))
            .layer(MetricsLayer::new(self.label))
            .layer(AuthorizeLayer::new(policy, plaintext))
            .layer(RateLimitLayer::new(limits))
            .layer(AuditLayer::new(self.trail.clone(), self.clock.clone()))
            .layer(TimeoutLayer::new(self.settings.request_timeout()))
            .layer(LoadShedLayer::new(self.settings.concurrency_limit))
            .layer(BadBodyLayer)
            .layer(CatchPanicLayer)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
        let mut server = tokio::spawn(server);

        tokio::pin!(shutdown);
        let db = tokio::select! {
            prepared = prepare => match prepared {
                Ok(db) => db,
                Err(err) => {
                    let _ = self.drain(&mut server, &stop, &sever).await;
                    return Err(err.context(format!("{} failed to start", self.label)));
                }
            },
            () = &mut shutdown => {
                tracing::info!(service = self.label, "shutdown requested while starting");
                self.stopping.cancel();
                let _ = self.drain(&mut server, &stop, &sever).await;
                self.drain_jobs().await;
                return Ok(());
            }
            finished = &mut server => {
                finished.context("server task")?.context("server stopped")?;
                anyhow::bail!("{} server stopped before it was ready", self.label);
            }
        };

        let trail_stop = CancellationToken::new();
        let mut jobs = Vec::new();
        if let Some(audit) = &self.audit {
            let keys = AuditKeys::derive(&audit.ctx.kek, self.label);
            let seal = Seal::Keyed(keys.chain.clone());
            if let Err(err) = reseal(&db, &seal, self.label).await {
                let _ = self.drain(&mut server, &stop, &sever).await;
                return Err(err.context(format!("{} failed to start", self.label)));
            }
            let (trail, writer) = Trail::start(db.clone(), self.label, seal, trail_stop.clone());
            let _ = self.trail.set(trail.clone());
            audit.api.set(AuditServiceServer::new(AuditApi::new(
                db.clone(),
                self.label,
                keys,
                trail,
                self.clock.clone(),
            )));
            jobs.push(writer);
            let settings = &audit.ctx.settings;
            jobs.push(tokio::spawn(witnessing::run(
                audit.ctx.clone(),
                db.clone(),
                settings.witness_ring(),
                settings.witness_interval(),
                trail_stop.clone(),
            )));
        }
        self.set_status(ServingStatus::Serving).await;
        tracing::info!(service = self.label, "serving");
        let watcher = tokio::spawn(watch_health(
            db,
            self.jobs.failed(),
            self.health.clone(),
            self.names.clone(),
            self.settings.clone(),
            stop.clone(),
        ));

        tokio::select! {
            () = &mut shutdown => {}
            finished = &mut server => {
                watcher.abort();
                self.stopping.cancel();
                self.drain_jobs().await;
                trail_stop.cancel();
                finished.context("server task")?.context("server stopped")?;
                return Ok(());
            }
        }
        self.stopping.cancel();

        tracing::info!(
            service = self.label,
            grace_ms = u64::try_from(self.settings.grace_period.as_millis()).unwrap_or(u64::MAX),
            "draining"
        );
        self.set_status(ServingStatus::NotServing).await;
        watcher.abort();
        let drained = self.drain(&mut server, &stop, &sever).await;
        // Jobs finish their work in flight (and may still write the trail) before it closes.
        self.drain_jobs().await;
        // Calls are over: what they queued for the trail is written before we return.
        trail_stop.cancel();
        if tokio::time::timeout(
            self.settings.grace_period(),
            futures_util::future::join_all(jobs),
        )
        .await
        .is_err()
        {
            tracing::error!(
                service = self.label,
                "the access trail was not flushed in time"
            );
        }
        drained?;
        tracing::info!(service = self.label, "stopped");
        Ok(())
    }

    /// Stops the background jobs and waits for them within the grace period.
    async fn drain_jobs(&self) {
        if !self.jobs.drain(self.settings.grace_period()).await {
            tracing::warn!(
                service = self.label,
                "background jobs still busy after the grace period; their work is taken up at the next start"
            );
        }
    }

    /// Stops accepting, lets calls in flight finish within the grace period, then severs
    /// the connections still open (ending the calls on them) and waits for the server.
    async fn drain(
        &self,
        server: &mut JoinHandle<Result<(), tonic::transport::Error>>,
        stop: &CancellationToken,
        sever: &CancellationToken,
    ) -> anyhow::Result<()> {
        stop.cancel();
        if let Ok(finished) = tokio::time::timeout(self.settings.grace_period(), &mut *server).await
        {
            return finished.context("server task")?.context("server stopped");
        }
        tracing::warn!(
            service = self.label,
            "grace period over: dropping connections"
        );
        sever.cancel();
        // Severed connections fail their next read or write at once; the bound only
        // guards against a connection task that never polls its socket again.
        if tokio::time::timeout(Duration::from_secs(1), &mut *server)
            .await
            .is_err()
        {
            server.abort();
        }
        Ok(())
    }

    /// Serves health alone, in plaintext, for probes that cannot present a certificate.
    async fn serve_health(
        &self,
        addr: std::net::SocketAddr,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("{}: cannot listen for health checks on {addr}", self.label)
        })?;
        let service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(self.health.clone()),
        );
        // Reflection of health alone, so grpcurl and grpc-health-probe work without protos.
        let v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .build_v1()?;
        let v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
            .build_v1alpha()?;
        let label = self.label;
        tokio::spawn(async move {
            let served = Server::builder()
                .add_service(service)
                .add_service(v1)
                .add_service(v1alpha)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    stop.cancelled_owned(),
                )
                .await;
            if let Err(err) = served {
                tracing::warn!(service = label, error = %err, "health port stopped");
            }
        });
        Ok(())
    }

    fn add_reflection(&mut self) -> anyhow::Result<()> {
        let mut v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pdm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection");
        // grpcurl 1.8 still asks for v1alpha.
        let mut v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pdm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection");
        for name in &self.names {
            v1 = v1.with_service_name(*name);
            v1alpha = v1alpha.with_service_name(*name);
        }
        self.routes.add_service(v1.build_v1()?);
        self.routes.add_service(v1alpha.build_v1alpha()?);
        Ok(())
    }

    async fn set_status(&self, status: ServingStatus) {
        set_status(&self.health, &self.names, status).await;
    }
}

/// A served connection that fails its reads and writes once severed: the connection task
/// then ends, and with it every call on the connection. Connections run on tasks of their
/// own, so dropping the server's task alone would leave them (and their calls) running.
struct Severable<IO> {
    io: IO,
    severed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<IO> Severable<IO> {
    fn new(io: IO, sever: &CancellationToken) -> Self {
        Self {
            io,
            severed: Box::pin(sever.clone().cancelled_owned()),
        }
    }

    /// Whether the connection is severed; registers the task to be woken when it is.
    fn poll_severed(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.severed
            .as_mut()
            .poll(cx)
            .map(|()| io::Error::new(io::ErrorKind::ConnectionAborted, "grace period over"))
    }
}

impl<IO: Connected> Connected for Severable<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Severable<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Poll::Ready(err) = self.poll_severed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Severable<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(err) = self.poll_severed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(err) = self.poll_severed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Poll::Ready(err) = self.poll_severed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn set_status(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// Seals a trail written before keys with the key, once (see [`store::reseal`]).
async fn reseal(db: &DatabaseConnection, seal: &Seal, service: &'static str) -> anyhow::Result<()> {
    match store::reseal(db, seal)
        .await
        .context("re-sealing the access trail with its key")?
    {
        Resealed::AlreadyKeyed => {}
        Resealed::Sealed(entries) => {
            tracing::info!(service, entries, "access trail re-sealed with its key");
        }
        Resealed::Broken(problems) => tracing::error!(
            service,
            problems,
            "the access trail failed its SHA-256 check before being keyed: left as it is, `pdm audit verify` reports it"
        ),
    }
    Ok(())
}

/// Flips health to `NOT_SERVING` while the database does not answer, and back.
/// Keeps health in step with what the service needs to answer rightly: a database that
/// answers, and every job it cannot do without alive.
async fn watch_health(
    db: DatabaseConnection,
    mut failed: tokio::sync::watch::Receiver<Option<&'static str>>,
    health: HealthReporter,
    names: Vec<&'static str>,
    settings: ServerSettings,
    stop: CancellationToken,
) {
    let mut serving = true;
    let mut db_answers = true;
    let mut jobs_watched = true;
    let mut tick = tokio::time::interval(settings.db_check_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                let answers = matches!(
                    tokio::time::timeout(settings.db_check_interval(), db.ping()).await,
                    Ok(Ok(()))
                );
                if answers != db_answers {
                    db_answers = answers;
                    if answers {
                        tracing::info!("database answers again");
                    } else {
                        tracing::warn!("database does not answer: not serving");
                    }
                }
            }
            changed = failed.changed(), if jobs_watched => {
                jobs_watched = changed.is_ok();
            }
        }
        let job_dead = failed.borrow().is_some();
        let now = db_answers && !job_dead;
        if now != serving {
            serving = now;
            if now {
                tracing::info!("serving again");
                set_status(&health, &names, ServingStatus::Serving).await;
            } else {
                set_status(&health, &names, ServingStatus::NotServing).await;
            }
        }
    }
}
