//! A mesh of real services on ephemeral ports, each with its own database.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use base64::{Engine, engine::general_purpose::STANDARD};
use pdm_dev_pki::{Authority, service_dns_names, write_identity};
use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    retention::v1::retention_service_client::RetentionServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
    subject::v1::subject_data_service_client::SubjectDataServiceClient,
    telemetry::v1::telemetry_service_client::TelemetryServiceClient,
    transfers::v1::transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{
    MeshService, ServiceContext, SharedClock, SystemClock,
    db::{self, DatabaseTarget},
    security::Security,
    settings::Settings,
};
use pdm_tls::{
    config::{Reloading, client_config},
    identity::Caller,
    layout::{self, write_private},
};
use rustls::ClientConfig;
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

use crate::{
    database::{Backend, TestDatabase},
    logs::{LogCapture, captured_logs},
};

/// The company client the test kit's own clients call as; the mesh allows it every
/// method (`security.allow_all`), so tests exercise services rather than the policy.
pub const TEST_CLIENT: &str = "testkit";

/// The trust domain of test meshes.
const TRUST_DOMAIN: &str = "pdm.local";

/// Builds a [`Mesh`].
pub struct TestMesh {
    services: Vec<Arc<dyn MeshService>>,
    overrides: Vec<(String, String)>,
    clock: Option<SharedClock>,
    backend: Backend,
}

impl Default for TestMesh {
    fn default() -> Self {
        Self::new()
    }
}

impl TestMesh {
    /// An empty mesh on the backend `PDM_TEST_DATABASE` selects.
    pub fn new() -> Self {
        Self {
            services: Vec::new(),
            overrides: Vec::new(),
            clock: None,
            backend: Backend::from_env(),
        }
    }

    /// Adds a service.
    pub fn with(mut self, service: impl MeshService) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Overrides a setting (`server.request_timeout_ms`, `identity.session_ttl_minutes`…).
    pub fn setting(mut self, key: &str, value: impl ToString) -> Self {
        self.overrides.push((key.to_owned(), value.to_string()));
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Starts every service and waits until each reports `SERVING`.
    pub async fn start(self) -> anyhow::Result<Mesh> {
        let logs = captured_logs();
        let dir = tempfile::tempdir()?;
        let database = TestDatabase::create(self.backend).await?;

        // Bind every port first, so each service's settings can name its peers.
        let mut listeners = BTreeMap::new();
        for service in &self.services {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            listeners.insert(service.name(), listener);
        }
        let mut kek = [0u8; 32];
        getrandom::fill(&mut kek).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
        let mut overrides = vec![
            ("data_dir".to_owned(), dir.path().display().to_string()),
            ("crypto.kek".to_owned(), STANDARD.encode(kek)),
            ("server.grace_period_ms".to_owned(), "2000".to_owned()),
            ("server.db_check_interval_ms".to_owned(), "250".to_owned()),
            ("database.max_connections".to_owned(), "8".to_owned()),
            ("tls.trust_domain".to_owned(), TRUST_DOMAIN.to_owned()),
            ("tls.reload_interval_ms".to_owned(), "100".to_owned()),
            (
                "security.allow_all".to_owned(),
                format!("client:{TEST_CLIENT}"),
            ),
            // A plaintext mesh (no sidecar in tests) takes the test kit's own calls, which
            // carry no identity header, as the test client's.
            (
                "tls.plaintext_caller".to_owned(),
                format!("client:{TEST_CLIENT}"),
            ),
        ];
        // Meshes run side by side: no fixed health ports.
        let defaults = Settings::with_overrides(Vec::<(String, String)>::new())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for name in defaults.services.keys() {
            overrides.push((format!("services.{name}.health_port"), "0".to_owned()));
        }
        // Witnesses are the mesh's own services; a test that wants witnessing shortens
        // the interval (an hour never elapses in a test, so trails hold only its calls).
        let ring: Vec<&str> = listeners.keys().copied().collect();
        overrides.push(("audit.witness_ring".to_owned(), ring.join(",")));
        overrides.push(("audit.witness_interval_ms".to_owned(), "3600000".to_owned()));
        // Without a rights service in the mesh, identity erases account deletions itself.
        if !self.services.iter().any(|s| s.name() == "rights") {
            overrides.push(("identity.deletion".to_owned(), "local".to_owned()));
        }
        if let Some(url) = database.url() {
            overrides.push(("database.url".to_owned(), url.to_owned()));
        }
        if let Some(url) = database.key_store_url() {
            overrides.push(("crypto.key_store_url".to_owned(), url.to_owned()));
        }
        for (name, listener) in &listeners {
            let addr = listener.local_addr()?;
            overrides.push((format!("services.{name}.port"), addr.port().to_string()));
            overrides.push((
                format!("services.{name}.endpoint"),
                format!("http://{addr}"),
            ));
        }
        overrides.extend(self.overrides);
        let settings =
            Arc::new(Settings::with_overrides(overrides).map_err(|e| anyhow::anyhow!("{e}"))?);

        // A PKI of the mesh's own: a certificate per service, the command line's, ours.
        let authority = Authority::new(TRUST_DOMAIN, "pdm test CA")?;
        let certs = settings.tls.dir(&settings.data_dir);
        std::fs::create_dir_all(&certs)?;
        write_private(&layout::ca_path(&certs), &authority.cert, false)?;
        for name in settings.services.keys() {
            let caller = Caller::Service(name.clone());
            write_identity(&certs, &authority, &caller, &service_dns_names(name, "pdm"))?;
        }
        write_identity(&certs, &authority, &Caller::Admin, &[])?;
        write_identity(
            &certs,
            &authority,
            &Caller::Client(TEST_CLIENT.to_owned()),
            &[],
        )?;
        let security = Security::load(&settings)?;

        let mut mesh = Mesh {
            settings,
            registry: BTreeMap::new(),
            running: BTreeMap::new(),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            kek: Arc::new(kek),
            security,
            authority,
            logs,
            database,
            _dir: dir,
        };
        for service in self.services {
            mesh.registry.insert(service.name(), service);
        }
        for (name, listener) in listeners {
            mesh.spawn(name, listener).await?;
        }
        Ok(mesh)
    }
}

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    channel: Channel,
}

/// Running services. Dropping the mesh stops them and drops its database.
pub struct Mesh {
    settings: Arc<Settings>,
    registry: BTreeMap<&'static str, Arc<dyn MeshService>>,
    running: BTreeMap<&'static str, Running>,
    clock: SharedClock,
    kek: Arc<[u8; 32]>,
    security: Arc<Security>,
    authority: Authority,
    logs: LogCapture,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("services", &self.running.keys().collect::<Vec<_>>())
            .field("backend", &self.database.backend())
            .finish_non_exhaustive()
    }
}

/// A further replica of one of the mesh's services ([`Mesh::start_replica`]); stopped
/// when dropped.
pub struct Replica {
    running: Running,
}

impl Replica {
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// A channel to it, as the test client.
    pub fn channel(&self) -> Channel {
        self.running.channel.clone()
    }

    /// Stops it gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.running.stop.cancel();
        (&mut self.running.task).await??;
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.running.stop.cancel();
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("addr", &self.running.addr)
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Starts another replica of `name` on an ephemeral port: the same settings, the same
    /// database, as a second pod of the Deployment would run.
    pub async fn start_replica(&self, name: &'static str) -> anyhow::Result<Replica> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Replica {
            running: self.launch(name, listener).await?,
        })
    }

    async fn spawn(&mut self, name: &'static str, listener: TcpListener) -> anyhow::Result<()> {
        let running = self.launch(name, listener).await?;
        self.running.insert(name, running);
        Ok(())
    }

    async fn launch(&self, name: &'static str, listener: TcpListener) -> anyhow::Result<Running> {
        let service = self
            .registry
            .get(name)
            .with_context(|| format!("{name} is not part of this mesh"))?
            .clone();
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let ctx = ServiceContext {
            name,
            security: self.security.clone(),
            settings: self.settings.clone(),
            clock: self.clock.clone(),
            kek: self.kek.clone(),
        };
        let mut task =
            tokio::spawn(service.run(ctx, listener, Box::pin(stop.clone().cancelled_owned())));
        let channel = self.connect(addr, &Caller::Client(TEST_CLIENT.to_owned()))?;
        wait_serving(name, &channel, &mut task).await?;
        Ok(Running {
            addr,
            stop,
            task,
            channel,
        })
    }

    /// A channel to a running service.
    pub fn channel(&self, name: &str) -> Channel {
        match self.running.get(name) {
            Some(r) => r.channel.clone(),
            None => panic!("{name} is not running in this mesh"),
        }
    }

    /// A new connection to `addr` as `caller` (over mutual TLS unless the mesh runs with
    /// `tls.enabled = false`); the caller's certificate is issued by the mesh's CA.
    fn connect(&self, addr: SocketAddr, caller: &Caller) -> anyhow::Result<Channel> {
        let endpoint = format!("http://{addr}");
        if !self.settings.tls.enabled {
            return Ok(Endpoint::from_shared(endpoint)?
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .connect_lazy());
        }
        let dir = self.certificate_dir();
        if !layout::paths(&dir, caller).0.exists() {
            write_identity(&dir, &self.authority, caller, &[])?;
        }
        pdm_runtime::client::plain_channel_with(
            &endpoint,
            Duration::from_secs(60),
            Some(client_tls(&dir, caller)?),
        )
    }

    /// The client TLS configuration of `caller` (issued by the mesh's CA on first use);
    /// None when the mesh runs in plaintext.
    pub fn client_tls(
        &self,
        caller: &Caller,
    ) -> anyhow::Result<Option<Arc<Reloading<ClientConfig>>>> {
        if !self.settings.tls.enabled {
            return Ok(None);
        }
        let dir = self.certificate_dir();
        if !layout::paths(&dir, caller).0.exists() {
            write_identity(&dir, &self.authority, caller, &[])?;
        }
        Ok(Some(client_tls(&dir, caller)?))
    }

    /// A channel to a running service as `caller`, for the authorisation tests.
    pub fn channel_as(&self, name: &str, caller: &Caller) -> anyhow::Result<Channel> {
        let addr = self
            .addr(name)
            .with_context(|| format!("{name} is not running in this mesh"))?;
        self.connect(addr, caller)
    }

    /// The mesh's certificate directory (`ca.pem`, `<identity>.pem`, `<identity>.key`).
    pub fn certificate_dir(&self) -> PathBuf {
        self.settings.tls.dir(&self.settings.data_dir)
    }

    /// The mesh's certificate authority, to issue or rotate certificates in tests.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The address a service listens on.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.running.get(name).map(|r| r.addr)
    }

    /// An identity client.
    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel(pdm_identity::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// Creates an account for `person` through identity and returns its subject id.
    pub async fn sign_up(&self, person: &crate::fake::Person) -> anyhow::Result<String> {
        let account = self
            .identity()
            .create_account(person.sign_up())
            .await?
            .into_inner()
            .account
            .context("CreateAccount returned no account")?;
        Ok(account.subject_id)
    }

    /// Signs up a person in the EEA who agreed to product analytics and sends five usage
    /// events of theirs through telemetry: data in identity, consent and telemetry.
    pub async fn person_with_data(&self) -> anyhow::Result<(crate::fake::Person, String)> {
        use pdm_proto::{
            common::v1::Region,
            consent::v1::{GrantConsentRequest, Source},
            telemetry::v1::{DeviceContext, Event, EventKind, IngestEventsRequest},
        };
        let person = crate::fake::Person {
            region: Region::Eea,
            ..crate::fake::Person::new()
        };
        let subject = self.sign_up(&person).await?;
        self.consent()
            .grant_consent(GrantConsentRequest {
                subject_id: subject.clone(),
                purpose: "product_analytics".into(),
                source: Source::WebForm as i32,
                policy_version: "2024-06-28".into(),
                text_hash: "b".repeat(64),
                actor: "cookie-banner".into(),
                occurred_at: None,
            })
            .await?;
        let events = (0..5)
            .map(|_| Event {
                subject_id: subject.clone(),
                kind: EventKind::FeatureUsed as i32,
                occurred_at: Some(pdm_runtime::convert::timestamp(chrono::Utc::now())),
                feature: "export".into(),
                device: Some(DeviceContext {
                    os_name: "Linux".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let ingested = self
            .telemetry()
            .ingest_events(IngestEventsRequest {
                batch_id: format!("b-{subject}"),
                events,
            })
            .await?
            .into_inner();
        anyhow::ensure!(ingested.accepted == 5, "events refused: {ingested:?}");
        Ok((person, subject))
    }

    /// A consent client.
    pub fn consent(&self) -> ConsentServiceClient<Channel> {
        ConsentServiceClient::new(self.channel(pdm_consent::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A transfers client.
    pub fn transfers(&self) -> TransfersServiceClient<Channel> {
        TransfersServiceClient::new(self.channel(pdm_transfers::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A retention client.
    pub fn retention(&self) -> RetentionServiceClient<Channel> {
        RetentionServiceClient::new(self.channel(pdm_retention::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A telemetry client.
    pub fn telemetry(&self) -> TelemetryServiceClient<Channel> {
        TelemetryServiceClient::new(self.channel(pdm_telemetry::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A rights client.
    pub fn rights(&self) -> RightsServiceClient<Channel> {
        RightsServiceClient::new(self.channel(pdm_rights::NAME))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A SubjectData client for one service.
    pub fn subject_data(&self, name: &str) -> SubjectDataServiceClient<Channel> {
        SubjectDataServiceClient::new(self.channel(name))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// A health client for one service.
    pub fn health(&self, name: &str) -> HealthClient<Channel> {
        HealthClient::new(self.channel(name))
    }

    /// Stops a service gracefully and waits for it.
    pub async fn stop(&mut self, name: &str) -> anyhow::Result<()> {
        let running = self
            .running
            .remove(name)
            .with_context(|| format!("{name} is not running"))?;
        running.stop.cancel();
        running.task.await??;
        Ok(())
    }

    /// Starts a stopped service again on the same port, with the same database.
    pub async fn restart(&mut self, name: &'static str) -> anyhow::Result<()> {
        let port = self.settings.service(name)?.port;
        if self.running.contains_key(name) {
            self.stop(name).await?;
        }
        // The port was free a moment ago, but until this bind another test of the process
        // may hold it as the local port of an outgoing connection: wait for it a little.
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => break listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.spawn(name, listener).await
    }

    /// The settings every service of the mesh runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, to change before a [`Mesh::restart`] (running services keep theirs).
    pub fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// The logs captured in this process.
    pub fn logs(&self) -> &LogCapture {
        &self.logs
    }

    /// The backend the mesh runs on.
    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    /// A direct connection to a service's database, for checks on the raw rows.
    pub async fn connect_db(&self, name: &str) -> anyhow::Result<DatabaseConnection> {
        let target = DatabaseTarget::resolve(&self.settings, name)?;
        db::connect(&self.settings, &target).await
    }

    /// A direct connection to a service's key store (its subjects' wrapped data keys).
    pub async fn connect_key_store(&self, name: &str) -> anyhow::Result<DatabaseConnection> {
        let target = pdm_runtime::key_store::resolve(&self.settings, name)?;
        db::connect(&self.settings, &target.target).await
    }

    /// The SQLite files of a service (database, WAL and shared memory), when on SQLite.
    pub fn sqlite_files(&self, name: &str) -> Vec<PathBuf> {
        let base = self.settings.data_dir.join(format!("{name}.db"));
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| PathBuf::from(format!("{}{suffix}", base.display())))
            .filter(|p| p.exists())
            .collect()
    }
}

/// The client TLS configuration of `caller` from a certificate directory laid out as
/// `pdm certs init` writes it.
pub fn client_tls(
    dir: &std::path::Path,
    caller: &Caller,
) -> anyhow::Result<Arc<Reloading<ClientConfig>>> {
    Ok(Reloading::fixed(client_config(&layout::files(
        dir, caller,
    ))?))
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.security.shutdown();
        for running in self.running.values() {
            running.stop.cancel();
            running.task.abort();
        }
    }
}

async fn wait_serving(
    name: &str,
    channel: &Channel,
    task: &mut JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        ready = pdm_runtime::client::wait_serving(channel, Duration::from_secs(60)) => {
            ready.with_context(|| format!("{name} did not start"))
        }
        finished = &mut *task => Err(match finished? {
            Err(e) => e.context(format!("{name} stopped while starting")),
            Ok(()) => anyhow::anyhow!("{name} stopped while starting"),
        }),
    }
}
