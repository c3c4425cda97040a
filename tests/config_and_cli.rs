//! The `pdm` binary itself: configuration errors (docs/operations.md: "A bad value stops the start
//! with the key named (exit 78)"), the service catalogue, and `pdm serve` from start to a
//! graceful stop on SIGTERM, with logs that carry no personal data.

use std::{
    io::Read,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use pdm_proto::identity::v1::{
    AuthenticateRequest, GetAccountRequest, identity_service_client::IdentityServiceClient,
};
use pdm_testkit::{Backend, TestDatabase, fake::Person};
use pdm_tls::identity::Caller;
use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// EX_CONFIG.
const EXIT_CONFIG: i32 = 78;
const LIMIT: Duration = Duration::from_secs(60);
/// Every service the design names, in port order.
const SERVICES: [&str; 7] = [
    "identity",
    "consent",
    "telemetry",
    "retention",
    "transfers",
    "rights",
    "incidents",
];
/// What the test kit logs at, so the binary's logs are checked at least as closely.
const DEBUG_FILTER: &str = "debug,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=info";

/// `pdm` with a clean environment (no `PDM__…`, `PDM_CONFIG`, `RUST_LOG` or OTLP
/// endpoint from the test's own) in `dir`, so no `./pdm.toml` is picked up.
fn pdm(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command.env_clear().current_dir(dir);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    // Tests run side by side: no fixed health ports (a test that wants one sets it), the
    // web front (issue 20) on any free port.
    command.env("PDM__WEB__PORT", "0");
    for name in SERVICES {
        command.env(
            format!("PDM__SERVICES__{}__HEALTH_PORT", name.to_uppercase()),
            "0",
        );
    }
    command
}

/// A finished run's exit status and output.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` to completion (killing it after [`LIMIT`]).
async fn exec(command: &mut Command) -> anyhow::Result<Run> {
    let mut child = Spawned::new(command)?;
    let status = child.wait(LIMIT).await?;
    let (stdout, stderr) = child.output();
    Ok(Run {
        status,
        stdout,
        stderr,
    })
}

// === impl Spawned ===

/// A child process whose output is collected as it comes; killed when dropped.
struct Spawned {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Spawned {
    fn new(command: &mut Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, stdout.clone()));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, stderr.clone()));
        }
        Ok(Self {
            child,
            stdout,
            stderr,
            readers,
        })
    }

    fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether it exited already, and how.
    fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `limit` for it to exit.
    async fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "pdm still running after {limit:?}; stderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything it wrote, once it has exited (the pipes are read to their end).
    fn output(&mut self) -> (String, String) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (self.stdout(), self.stderr())
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    })
}

/// A port nothing listens on right now.
/// A port free now and not handed out before in this process: the kernel may give a
/// just-released port again, and two services of one mesh on the same port is a
/// configuration error (seen: "port … is already used by consent").
fn free_port() -> anyhow::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut given = GIVEN
            .lock()
            .map_err(|_| anyhow::anyhow!("the port list was poisoned"))?;
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
}

// === the tests ===

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_exit_78_naming_every_bad_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = exec(
        pdm(dir.path())
            .args(["serve", "identity"])
            .env("PDM__DATA_DIR", dir.path())
            .env("PDM__SERVER__REQUEST_TIMEOUT_MS", "soon")
            .env("PDM__SERVICES__CONSENT__PORT", "50051"),
    )
    .await?;
    assert_eq!(run.status.code(), Some(EXIT_CONFIG), "{}", run.stderr);
    // Both problems at once: a value of the wrong type, and a port used twice.
    assert!(
        run.stderr.contains("server.request_timeout_ms"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("services.identity.port")
            || run.stderr.contains("services.consent.port"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("is serving"),
        "it must not start: {}",
        run.stdout
    );
    assert!(
        !dir.path().join("identity.db").exists(),
        "nothing is created before the settings are valid"
    );

    // A settings file that is not there is a configuration error too.
    let missing = dir.path().join("missing.toml");
    let run = exec(
        pdm(dir.path())
            .arg("--config")
            .arg(&missing)
            .args(["serve", "identity"]),
    )
    .await?;
    assert_eq!(run.status.code(), Some(EXIT_CONFIG), "{}", run.stderr);
    assert!(run.stderr.contains("config file"), "{}", run.stderr);

    // And so is a bad value in a settings file, named by its key.
    let file = dir.path().join("pdm.toml");
    std::fs::write(
        &file,
        "[server]\nconcurrency_limit = 0\nhost = \"localhost\"\n",
    )?;
    let run = exec(pdm(dir.path()).args(["serve", "identity"])).await?;
    assert_eq!(run.status.code(), Some(EXIT_CONFIG), "{}", run.stderr);
    assert!(
        run.stderr.contains("server.concurrency_limit"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("server.host"), "{}", run.stderr);
    Ok(())
}

#[tokio::test]
async fn every_section_is_checked_at_start_even_of_services_not_started() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Two problems in two sections of services this process does not run, one from the
    // file and one from the environment: both named together, nothing started.
    std::fs::write(
        dir.path().join("pdm.toml"),
        "[consent]\nunsubscribe_link_days = 0\n",
    )?;
    let run = exec(
        pdm(dir.path())
            .args(["serve", "identity"])
            .env("PDM__DATA_DIR", dir.path())
            .env("PDM__RIGHTS__SMTP_TIMEOUT_SECS", "soon"),
    )
    .await?;
    assert_eq!(run.status.code(), Some(EXIT_CONFIG), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("consent.unsubscribe_link_days: between 1 and 365"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("rights.smtp_timeout_secs"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("is serving"),
        "it must not start: {}",
        run.stdout
    );
    assert!(
        !dir.path().join("identity.db").exists(),
        "nothing is created before the settings are valid"
    );

    // `pdm config check` reports the same, and passes the defaults.
    let run = exec(
        pdm(dir.path())
            .args(["config", "check"])
            .env("PDM__RIGHTS__SMTP_TIMEOUT_SECS", "soon"),
    )
    .await?;
    assert_eq!(run.status.code(), Some(EXIT_CONFIG), "{}", run.stderr);
    assert!(
        run.stderr.contains("consent.unsubscribe_link_days")
            && run.stderr.contains("rights.smtp_timeout_secs"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(dir.path().join("pdm.toml"))?;
    // Lists take the comma-separated form of an environment variable.
    let run = exec(
        pdm(dir.path())
            .args(["config", "check"])
            .env("PDM__AUDIT__WITNESS_RING", "identity, consent")
            .env("PDM__RETENTION__SERVICES", "identity,consent"),
    )
    .await?;
    assert!(run.status.success(), "{}", run.stderr);
    Ok(())
}

#[tokio::test]
async fn pdm_services_lists_the_six_services_and_their_state() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = exec(pdm(dir.path()).arg("services")).await?;
    assert!(run.status.success(), "{}", run.stderr);
    let listed: Vec<(String, String)> = run
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, state) = line.split_once(' ').unwrap_or((line, ""));
            (name.to_owned(), state.trim().to_owned())
        })
        .collect();
    let names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, SERVICES, "{}", run.stdout);
    for (name, state) in &listed {
        assert!(
            state == "built" || state == "not built yet",
            "{name}: {state:?}"
        );
    }
    assert_eq!(listed[0].1, "built", "identity is built");
    Ok(())
}

#[tokio::test]
async fn serving_a_service_that_is_not_built_or_not_known_fails_saying_so() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let services = exec(pdm(dir.path()).arg("services")).await?;
    // Which services are still to be built changes as the mesh grows: ask the binary.
    let not_built: Vec<&str> = services
        .stdout
        .lines()
        .filter(|line| line.ends_with("not built yet"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for name in not_built {
        let run = exec(
            pdm(dir.path())
                .args(["serve", name])
                .env("PDM__DATA_DIR", dir.path()),
        )
        .await?;
        assert!(!run.status.success(), "pdm serve {name} succeeded");
        assert_ne!(run.status.code(), Some(EXIT_CONFIG), "not a settings error");
        assert!(
            run.stderr
                .contains(&format!("the {name} service is not built yet")),
            "{}",
            run.stderr
        );
    }

    let run = exec(
        pdm(dir.path())
            .args(["serve", "identity,billing"])
            .env("PDM__DATA_DIR", dir.path()),
    )
    .await?;
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("unknown service \"billing\""),
        "{}",
        run.stderr
    );
    assert!(
        !dir.path().join("identity.db").exists(),
        "nothing started when one name is wrong"
    );
    Ok(())
}

#[tokio::test]
async fn pdm_serve_identity_serves_then_stops_on_sigterm_without_logging_personal_data()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database = TestDatabase::create(Backend::from_env()).await?;
    let port = free_port()?;
    let mut command = pdm(dir.path());
    command
        .args(["serve", "identity"])
        .env("PDM__DATA_DIR", dir.path())
        .env("PDM__SERVICES__IDENTITY__PORT", port.to_string())
        .env("PDM__LOG__FORMAT", "json")
        .env("PDM__LOG__FILTER", DEBUG_FILTER)
        .env("PDM__SERVER__GRACE_PERIOD_MS", "5000");
    if let Some(url) = database.url() {
        command.env("PDM__DATABASE__URL", url);
    }
    let health_port = free_port()?;
    command.env(
        "PDM__SERVICES__IDENTITY__HEALTH_PORT",
        health_port.to_string(),
    );
    let mut pdm = Spawned::new(&mut command)?;

    // Ready when the plaintext health port (the probes' port) says so.
    let mut health = HealthClient::new(
        Endpoint::from_shared(format!("http://127.0.0.1:{health_port}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .connect_lazy(),
    );
    let started = Instant::now();
    loop {
        if let Some(status) = pdm.exited()? {
            anyhow::bail!("pdm exited with {status} while starting: {}", pdm.stderr());
        }
        let answer = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if matches!(&answer, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < LIMIT,
            "not serving after {LIMIT:?}: {}",
            pdm.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let identity_health = health
        .check(HealthCheckRequest {
            service: "pdm.identity.v1.IdentityService".to_owned(),
        })
        .await?
        .into_inner();
    assert_eq!(identity_health.status, ServingStatus::Serving as i32);

    // The first start wrote a development PKI, keys readable by the owner alone.
    let certs = dir.path().join("certs");
    for file in ["ca.pem", "identity.pem", "admin.pem", "client-demo.pem"] {
        assert!(certs.join(file).exists(), "{file} was not written");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(certs.join("identity.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "identity.key is readable by others");
    }
    // The service port speaks mutual TLS only: a plaintext call gets no answer.
    let plaintext = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let refused = HealthClient::new(plaintext)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(refused.is_err(), "a plaintext call was answered");
    let channel = pdm_runtime::client::plain_channel_with(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(10),
        Some(pdm_testkit::client_tls(
            &certs,
            &Caller::Client("demo".to_owned()),
        )?),
    )?;

    // The banner, printed once every service answers, shows how to call it.
    let addr = format!("127.0.0.1:{port}");
    let banner_shown = |out: &str| {
        out.contains("is serving")
            && out.contains(&format!(
                "-cert {} -key {} {addr} list",
                certs.join("client-demo.pem").display(),
                certs.join("client-demo.key").display()
            ))
            && out.contains(&format!(
                "{addr} pdm.identity.v1.IdentityService/CreateAccount"
            ))
    };
    let started = Instant::now();
    while !banner_shown(&pdm.stdout()) {
        anyhow::ensure!(started.elapsed() < LIMIT, "no banner: {}", pdm.stdout());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let storage = match database.url() {
        Some(_) => "(PostgreSQL)".to_owned(),
        None => format!("(SQLite files under {})", dir.path().display()),
    };
    assert!(pdm.stdout().contains(&storage), "{}", pdm.stdout());

    // Real traffic with personal data: sign-up, read-back, sign-in, a duplicate.
    let person = Person::new();
    let mut identity = IdentityServiceClient::new(channel);
    let account = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .ok_or_else(|| anyhow::anyhow!("no account"))?;
    identity
        .get_account(GetAccountRequest {
            subject_id: account.subject_id.clone(),
        })
        .await?;
    let session = identity
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?
        .into_inner();
    let err = identity
        .create_account(person.sign_up())
        .await
        .expect_err("duplicate email");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    let err = identity
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: format!("{} but wrong", person.password),
        })
        .await
        .expect_err("wrong password");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // SIGTERM: a graceful stop, exit code 0.
    pdm.signal("TERM")?;
    let status = pdm.wait(LIMIT).await?;
    let (stdout, stderr) = pdm.output();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stdout.contains("\"draining\"") && stdout.contains("\"stopped\""),
        "no drain in the logs: {stdout}"
    );
    assert!(
        stdout.contains("call finished"),
        "the debug log lines were not written: {stdout}"
    );

    let output = format!("{stdout}\n{stderr}");
    let mut secrets = person.secrets();
    secrets.push(("session token", session.session_token.as_str()));
    for (kind, value) in secrets {
        assert!(!value.is_empty(), "{kind} is empty");
        assert!(
            !output.contains(value),
            "personal data ({kind}) in pdm's output"
        );
    }
    drop(database);
    Ok(())
}

#[tokio::test]
async fn a_sigterm_while_the_mesh_is_still_starting_is_a_graceful_stop() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut command = pdm(dir.path());
    command
        .args(["serve", "all"])
        .env("PDM__DATA_DIR", dir.path().join("data"))
        .env("PDM__LOG__FORMAT", "json");
    for name in SERVICES {
        command.env(
            format!("PDM__SERVICES__{}__PORT", name.to_uppercase()),
            free_port()?.to_string(),
        );
    }
    command.env(
        "PDM__METRICS__LISTEN",
        format!("127.0.0.1:{}", free_port()?),
    );
    let mut pdm = Spawned::new(&mut command)?;
    // Its first words: the process is starting (migrations, certificates), not serving.
    let started = Instant::now();
    while pdm.stdout().is_empty() && pdm.stderr().is_empty() {
        anyhow::ensure!(started.elapsed() < LIMIT, "pdm said nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pdm.signal("TERM")?;
    let status = pdm.wait(LIMIT).await?;
    let (stdout, stderr) = pdm.output();
    assert!(
        status.success(),
        "a SIGTERM during the start must stop gracefully, not kill: {status}\n{stdout}\n{stderr}"
    );
    Ok(())
}
