//! `pdm serve all` as a child process: its own directory, free ports, a database of its
//! own, mutual TLS with the certificates it writes, and its stdout and stderr kept in a
//! file so the suite can read every line it logged.

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::Stdio,
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
    bin: PathBuf,
    dir: tempfile::TempDir,
    backend: Backend,
    services: Vec<String>,
    ports: BTreeMap<String, (u16, u16)>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
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
        let dir = tempfile::Builder::new().prefix("pdm-e2e-").tempdir()?;
        let mut ports = BTreeMap::new();
        let free = free_ports(services.len() * 2)?;
        for (i, name) in services.iter().enumerate() {
            ports.insert(name.clone(), (free[2 * i], free[2 * i + 1]));
        }
        let mut pdm = Self {
            bin,
            dir,
            backend,
            services,
            ports,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            starts: 0,
        };
        pdm.spawn().await?;
        Ok(pdm)
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
        self.dir.path().join("data")
    }

    /// Everything it wrote to stdout and stderr, over every start.
    pub fn log(&self) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&std::fs::read(self.log_path())?).into_owned())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pdm.log")
    }

    /// The gRPC port of `service`.
    pub fn port(&self, service: &str) -> anyhow::Result<u16> {
        self.ports
            .get(service)
            .map(|(grpc, _)| *grpc)
            .with_context(|| format!("no service {service}"))
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
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
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the process with `SIGKILL`: no drain, no flush.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Stops the process with `SIGTERM` and waits for its exit; fails unless it exits 0.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().context("no pid")?;
        let killed = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(killed.success(), "kill -TERM {pid} failed");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .context("pdm did not exit within 30 s of SIGTERM")??;
        anyhow::ensure!(status.success(), "pdm exited with {status} after SIGTERM");
        Ok(())
    }

    /// Starts it again in the same directory, on the same ports and database.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn().await
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(&self.bin);
        command
            .args(["serve", "all"])
            .current_dir(self.dir.path())
            .env("PDM__DATA_DIR", self.data_dir())
            .env("PDM__LOG__FORMAT", "json")
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
        if let Some(url) = self.backend.url() {
            command.env("PDM__DATABASE__URL", url);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if self.starts == 0 {
            self.init_certificates().await?;
        }
        self.child = Some(command.spawn().context("starting pdm serve all")?);
        self.starts += 1;
        self.wait_serving().await
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

    /// Waits until every service answers `SERVING` on its health port.
    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let limit = Duration::from_secs(90);
        let health: Vec<(String, u16)> = self
            .ports
            .iter()
            .map(|(name, (_, health))| (name.clone(), *health))
            .collect();
        for (name, port) in health {
            loop {
                if !self.is_running() {
                    bail!(
                        "pdm exited while starting (start {}); its log:\n{}",
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
    pub fn channel(&self, service: &str, caller: Caller) -> anyhow::Result<Channel> {
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

    /// Every file under the data directory, WAL and outbox files included.
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&self.data_dir(), &mut files);
        files
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

/// `n` distinct ports the kernel reports free (held together, so they differ).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
