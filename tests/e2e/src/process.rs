//! `pdm serve all` as a child process: its own directory, free ports, a database of its
//! own, mutual TLS with the certificates it writes, and its stdout and stderr kept in a
//! file so the suite can read every line it logged. Beside it, more replicas of one
//! service (`pdm serve <service>`) sharing its directory, database and certificates.

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::backend::Backend;

/// The binary under test: `PDM_BIN`, as `make e2e` sets it after its own
/// `cargo build --bin pdm`.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PDM_BIN").context(
        "PDM_BIN is not set: run the black-box suite with `make e2e`, which builds the \
         binary as `make run` does and points PDM_BIN at it",
    )?;
    let path = PathBuf::from(path);
    anyhow::ensure!(path.is_file(), "PDM_BIN={} is not a file", path.display());
    Ok(path)
}

/// Who calls: the name of a certificate that `pdm certs init` writes (`admin`,
/// `client-demo`, or a service's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Caller {
    /// The privacy team's command line.
    Admin,
    /// A company client (`client-demo`).
    Client,
    /// Another company client (`client-intruder`), with no link to anyone the world made.
    OtherClient,
    /// A service of the mesh, calling another.
    Service(&'static str),
}

impl Caller {
    fn file_stem(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Client => "client-demo",
            Self::OtherClient => "client-intruder",
            Self::Service(name) => name,
        }
    }
}

/// A running (or killed) `pdm serve all`.
#[derive(Debug)]
pub struct Pdm {
    process: Process,
    backend: Backend,
    services: Vec<String>,
}

impl Pdm {
    /// Starts `pdm serve all` on `backend` and waits until every service serves.
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        Self::start_with(backend, &[]).await
    }

    /// [`Pdm::start`] with extra settings as `PDM__…` environment variables.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = binary()?;
        let services = list_services(&bin).await?;
        let dir = Arc::new(tempfile::Builder::new().prefix("pdm-e2e-").tempdir()?);
        let mut ports = BTreeMap::new();
        let free = free_ports(services.len() * 2, &[])?;
        for (i, name) in services.iter().enumerate() {
            ports.insert(name.clone(), (free[2 * i], free[2 * i + 1]));
        }
        let process = Process {
            bin,
            dir,
            database_url: backend.url(),
            serve: "all".to_owned(),
            health: ports
                .iter()
                .map(|(name, (_, h))| (name.clone(), *h))
                .collect(),
            ports,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log_name: "pdm.log".to_owned(),
            child: None,
            starts: 0,
        };
        let mut pdm = Self {
            process,
            backend,
            services,
        };
        pdm.process.init_certificates().await?;
        let names = pdm.services.clone();
        pdm.process.spawn_on_free_ports(&names).await?;
        Ok(pdm)
    }

    /// Starts another replica of `service` as a process of its own (`pdm serve
    /// <service>`): the same data directory, database, certificates and settings (then
    /// `env`), its own gRPC and health ports and log; every other service reached where
    /// this process serves it. Waits until it serves.
    pub async fn start_replica(
        &self,
        service: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Replica> {
        anyhow::ensure!(
            self.services.iter().any(|s| s == service),
            "no service {service}"
        );
        let taken: Vec<u16> = self
            .process
            .ports
            .values()
            .flat_map(|(grpc, health)| [*grpc, *health])
            .collect();
        let free = free_ports(2, &taken)?;
        let (grpc, health) = (free[0], free[1]);
        let mut ports = self.process.ports.clone();
        ports.insert(service.to_owned(), (grpc, health));
        let mut settings = self.process.env.clone();
        settings.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut process = Process {
            bin: self.process.bin.clone(),
            dir: self.process.dir.clone(),
            database_url: self.process.database_url.clone(),
            serve: service.to_owned(),
            health: vec![(service.to_owned(), health)],
            ports,
            env: settings,
            log_name: format!("replica-{service}-{grpc}.log"),
            child: None,
            starts: 0,
        };
        process.spawn_on_free_ports(&[service.to_owned()]).await?;
        Ok(Replica {
            process,
            service: service.to_owned(),
        })
    }

    /// The services the binary runs, as `pdm services` lists them.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The database it runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Its data directory (SQLite files, certificates, outbox files, secrets).
    pub fn data_dir(&self) -> PathBuf {
        self.process.data_dir()
    }

    /// Everything it wrote to stdout and stderr, over every start.
    pub fn log(&self) -> anyhow::Result<String> {
        self.process.log()
    }

    /// The gRPC port of `service`.
    pub fn port(&self, service: &str) -> anyhow::Result<u16> {
        self.process.port(service)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// A line of `/proc/<pid>/status` in MiB: `VmRSS` (resident now) or `VmHWM` (peak).
    pub fn memory_mib(&self, field: &str) -> anyhow::Result<f64> {
        let pid = self.pid().context("pdm is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("no {field} in /proc/{pid}/status"))?
            .parse()?;
        Ok(kib / 1024.0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Kills the process with `SIGKILL`: no drain, no flush.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill().await
    }

    /// Stops the process with `SIGTERM` and waits for its exit; fails unless it exits 0.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        self.process.terminate().await
    }

    /// Sets a `PDM__…` setting for every later start (see [`Pdm::restart`]); the
    /// replicas started after this get it too.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.process.set_env(key, value);
    }

    /// Starts it again in the same directory, on the same ports and database.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill().await?;
        self.process.spawn().await
    }

    /// A channel to `service` over mutual TLS as `caller`.
    pub fn channel(&self, service: &str, caller: Caller) -> anyhow::Result<Channel> {
        self.process.channel(service, caller)
    }

    /// Every file under the data directory, WAL and outbox files included.
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&self.data_dir(), &mut files);
        files
    }
}

// === impl Replica ===

/// Another replica of one service (`pdm serve <service>`), started by
/// [`Pdm::start_replica`]. Dropping it kills the process; the data directory stays with
/// the [`Pdm`].
#[derive(Debug)]
pub struct Replica {
    process: Process,
    service: String,
}

impl Replica {
    /// The service it serves.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Its gRPC port.
    pub fn port(&self) -> u16 {
        self.process
            .ports
            .get(&self.service)
            .map_or(0, |(grpc, _)| *grpc)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Kills the process with `SIGKILL`: no drain, no flush.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill().await
    }

    /// Stops the process with `SIGTERM` and waits for its exit; fails unless it exits 0.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        self.process.terminate().await
    }

    /// Sets a `PDM__…` setting for every later start (see [`Replica::restart`]).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.process.set_env(key, value);
    }

    /// Starts it again on the same ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill().await?;
        self.process.spawn().await
    }

    /// Everything it wrote to stdout and stderr, over every start.
    pub fn log(&self) -> anyhow::Result<String> {
        self.process.log()
    }

    /// A channel to it over mutual TLS as `caller`.
    pub fn channel(&self, caller: Caller) -> anyhow::Result<Channel> {
        self.process.channel(&self.service, caller)
    }
}

// === impl Process ===

/// One `pdm serve` child process and what it is started with.
#[derive(Debug)]
struct Process {
    bin: PathBuf,
    /// Shared by the replicas of one mesh; deleted when the last of them is dropped.
    dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    /// `all`, or the one service it runs.
    serve: String,
    /// Every service's (gRPC, health) port, as this process is told them.
    ports: BTreeMap<String, (u16, u16)>,
    /// The health ports of the services it runs.
    health: Vec<(String, u16)>,
    env: Vec<(String, String)>,
    log_name: String,
    child: Option<Child>,
    starts: u32,
}

impl Process {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(&self.log_name)
    }

    fn log(&self) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&std::fs::read(self.log_path())?).into_owned())
    }

    fn port(&self, service: &str) -> anyhow::Result<u16> {
        self.ports
            .get(service)
            .map(|(grpc, _)| *grpc)
            .with_context(|| format!("no service {service}"))
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Replaces the setting `key` (or adds it), for the next spawn.
    fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    async fn terminate(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().context("no pid")?;
        let killed = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(killed.success(), "kill -TERM {pid} failed");
        let Ok(waited) = tokio::time::timeout(Duration::from_secs(30), child.wait()).await else {
            bail!(
                "pdm serve {} did not exit within 30 s of SIGTERM; its log:\n{}",
                self.serve,
                tail(&self.log().unwrap_or_default(), 40)
            );
        };
        let status = waited?;
        anyhow::ensure!(
            status.success(),
            "pdm serve {} exited with {status} after SIGTERM; its log:\n{}",
            self.serve,
            tail(&self.log().unwrap_or_default(), 40)
        );
        Ok(())
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(&self.bin);
        command
            .args(["serve", &self.serve])
            .current_dir(self.dir.path())
            .env("PDM__DATA_DIR", self.data_dir())
            .env("PDM__LOG__FORMAT", "json")
            // The web front (issue 20) on any free port: meshes run side by side.
            .env("PDM__WEB__PORT", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (name, (grpc, health)) in &self.ports {
            let key = name.to_ascii_uppercase();
            command.env(format!("PDM__SERVICES__{key}__PORT"), grpc.to_string());
            command.env(
                format!("PDM__SERVICES__{key}__HEALTH_PORT"),
                health.to_string(),
            );
        }
        if let Some(url) = &self.database_url {
            command.env("PDM__DATABASE__URL", url);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        self.child = Some(
            command
                .spawn()
                .with_context(|| format!("starting pdm serve {}", self.serve))?,
        );
        self.starts += 1;
        self.wait_serving().await
    }

    /// Starts it; when a port it was given was taken meanwhile (the kernel lends the
    /// ports [`free_ports`] finds to outgoing connections too, the mesh's own among
    /// them), starts it again with new ports for the services in `moving`, up to three
    /// times. A later restart keeps the ports it started on.
    async fn spawn_on_free_ports(&mut self, moving: &[String]) -> anyhow::Result<()> {
        let mut attempt = 1;
        loop {
            match self.spawn().await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {
                    attempt += 1;
                    let taken: Vec<u16> = self
                        .ports
                        .values()
                        .flat_map(|(grpc, health)| [*grpc, *health])
                        .collect();
                    let free = free_ports(moving.len() * 2, &taken)?;
                    for (i, name) in moving.iter().enumerate() {
                        let (grpc, health) = (free[2 * i], free[2 * i + 1]);
                        self.ports.insert(name.clone(), (grpc, health));
                        for served in self.health.iter_mut().filter(|(n, _)| n == name) {
                            served.1 = health;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The development PKI, with a second company client for the scoping tests (what
    /// `pdm serve all` would write on first start, plus `client-intruder`).
    async fn init_certificates(&self) -> anyhow::Result<()> {
        let status = Command::new(&self.bin)
            .args(["certs", "init", "--clients", "demo,intruder"])
            .current_dir(self.dir.path())
            .env("PDM__DATA_DIR", self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "pdm certs init failed: {status}");
        Ok(())
    }

    /// Waits until every service it runs answers `SERVING` on its health port.
    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let limit = Duration::from_secs(90);
        for (name, port) in self.health.clone() {
            loop {
                if !self.is_running() {
                    bail!(
                        "pdm serve {} exited while starting (start {}); its log:\n{}",
                        self.serve,
                        self.starts,
                        tail(&self.log().unwrap_or_default(), 40)
                    );
                }
                if serving(port).await {
                    break;
                }
                if started.elapsed() > limit {
                    bail!(
                        "{name} not serving after {limit:?}; the log:\n{}",
                        tail(&self.log().unwrap_or_default(), 40)
                    );
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Ok(())
    }

    /// A channel to `service` over mutual TLS as `caller`.
    fn channel(&self, service: &str, caller: Caller) -> anyhow::Result<Channel> {
        let certs = self.data_dir().join("certs");
        let read = |name: &str| {
            std::fs::read(certs.join(name)).with_context(|| format!("reading certs/{name}"))
        };
        let stem = caller.file_stem();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca.pem")?))
            .identity(Identity::from_pem(
                read(&format!("{stem}.pem"))?,
                read(&format!("{stem}.key"))?,
            ))
            .domain_name("localhost");
        let port = self.port(service)?;
        Ok(Endpoint::from_shared(format!("https://127.0.0.1:{port}"))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .connect_lazy())
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

async fn serving(health_port: u16) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(format!("http://127.0.0.1:{health_port}")) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// `pdm services`: the services of the mesh, in order.
async fn list_services(bin: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new(bin).arg("services").output().await?;
    anyhow::ensure!(out.status.success(), "pdm services failed");
    let names: Vec<String> = String::from_utf8(out.stdout)?
        .lines()
        .filter(|line| line.contains("built"))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    anyhow::ensure!(!names.is_empty(), "pdm services listed nothing");
    Ok(names)
}

/// `n` distinct ports the kernel reports free (held together, so they differ), none of
/// them in `taken` (ports of a process that may be down at this moment).
fn free_ports(n: usize, taken: &[u16]) -> anyhow::Result<Vec<u16>> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        anyhow::ensure!(listeners.len() < n + 64, "no {n} free ports");
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if !taken.contains(&port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
