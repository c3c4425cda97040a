//! "You will receive an email confirming the deletion": confirmations reach a real SMTP
//! server (aiosmtpd, started by each test on loopback with a certificate the test makes)
//! over TLS, after authentication, and never in the clear. The outbox then forgets the
//! address and the body; a message that cannot go safely is retried, then FAILED, and the
//! request shows it.
//!
//! aiosmtpd comes from `make tools` (`make test` installs it) in `.tools/venv`; the test
//! fails, with what to run, when it cannot find it (`PDM_TEST_SMTPD_PYTHON` names another
//! Python).

mod support;

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use pdm_dev_pki::Authority;
use pdm_proto::rights::v1::{
    DataSubjectRequest, DeliveryError, DeliveryStatus, Regime, RequestKind, Status,
};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{contains, raw_storage},
};
use pdm_tls::identity::Caller;
use serde_json::Value;
use support::{builder, californian, count, eventually, request, submit, wait_closed, wait_for};

/// The relay's user and password.
const USER: &str = "pdm-relay";
const PASSWORD: &str = "correct horse battery staple";

// === the server ===

/// How the test server speaks.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Offers STARTTLS and takes no mail before it.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// Offers no STARTTLS (and would take mail in the clear).
    Plain,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
            Self::Plain => "plain",
        }
    }
}

/// The Python that has aiosmtpd: `PDM_TEST_SMTPD_PYTHON` (the Makefile sets it), else
/// the repository's `.tools/venv`. Fails, never skips, without it.
fn python() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("PDM_TEST_SMTPD_PYTHON")
        .map_or_else(|| repo.join(".tools/venv/bin/python"), PathBuf::from);
    let works = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "the SMTP delivery test needs aiosmtpd, and {} cannot import it: run `make tools` \
         (`make test` installs it too), or point PDM_TEST_SMTPD_PYTHON at a Python that has it",
        python.display()
    );
    python
}

/// The authentication the server requires (over TLS): `USER` with the password of
/// `password_file`, by PLAIN or LOGIN, or LOGIN alone.
#[derive(Debug, Clone, Copy)]
struct Auth<'a> {
    password_file: &'a Path,
    login_only: bool,
}

/// Writes the password file (ending with a newline, as `kubectl create secret
/// --from-file` of an `echo`ed file would have it).
fn password_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("smtp-password");
    std::fs::write(&path, format!("{PASSWORD}\n"))?;
    Ok(path)
}

/// An aiosmtpd server on 127.0.0.1 (support/smtpd.py), stopped when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpServer {
    fn start(
        mode: Mode,
        dir: &Path,
        cert: Option<&Certificate>,
        auth: Option<Auth<'_>>,
    ) -> anyhow::Result<Self> {
        let out = dir.join(format!("smtpd-{}", mode.arg()));
        std::fs::create_dir_all(&out)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtpd.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .args(["--mode", mode.arg()])
            .arg("--out")
            .arg(&out);
        if let Some(cert) = cert {
            command
                .arg("--cert")
                .arg(&cert.cert)
                .arg("--key")
                .arg(&cert.key);
        }
        if let Some(auth) = auth {
            command
                .args(["--user", USER])
                .arg("--password-file")
                .arg(auth.password_file);
            if auth.login_only {
                command.arg("--login-only");
            }
        }
        // Its stdin stays open while the test holds it: closing it stops the server. Its
        // log (tracebacks of the handshakes the tests make fail included) goes to a file.
        let log = out.join("smtpd.log");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::anyhow!("smtpd.py did not start: {line:?}\n{log}")
            })?;
        Ok(Self { child, port, out })
    }

    fn read_json(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.out.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every message accepted so far.
    fn messages(&self) -> Vec<Value> {
        (1..)
            .map_while(|n| self.read_json(&format!("{n}.json")))
            .collect()
    }

    /// What the client did, command by command.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a message whose raw form contains every one of `needles`.
    async fn wait_for(&self, needles: &[&str]) -> anyhow::Result<Value> {
        eventually(
            "a message at the SMTP server",
            Duration::from_secs(30),
            || async {
                Ok(self.messages().into_iter().find(|m| {
                    let raw = m["raw"].as_str().unwrap_or_default();
                    needles.iter().all(|n| raw.contains(n))
                }))
            },
        )
        .await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server certificate (PEM files) for localhost and 127.0.0.1, and its CA's file.
struct Certificate {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificate {
    fn issue(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let authority = Authority::new("smtp.test", &format!("{name} test CA"))?;
        let leaf = authority.issue(&Caller::Service("smtp".into()), &["localhost".to_owned()])?;
        let files = Self {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&files.ca, &authority.cert)?;
        std::fs::write(&files.cert, &leaf.cert)?;
        std::fs::write(&files.key, &leaf.key)?;
        Ok(files)
    }
}

// === helpers ===

/// The rights mesh sending through `relay` with `settings` (retries one second apart).
fn mesh_with(dir: &Path, relay: &str, settings: &[(&str, String)]) -> TestMesh {
    let mut mesh = builder(&dir.join("outbox.jsonl"))
        .setting("rights.smtp_relay", relay)
        .setting("rights.mail_from", "privacy@example.com")
        .setting("rights.smtp_timeout_secs", "10")
        .setting("rights.smtp_retry_secs", "1")
        .setting("rights.smtp_max_retry_secs", "1");
    for (key, value) in settings {
        mesh = mesh.setting(&format!("rights.{key}"), value);
    }
    mesh
}

/// A Californian's CCPA deletion, carried out: its acknowledgement ("received") and its
/// confirmation ("completed") are owed. Returns the request and the person's email.
async fn deletion(mesh: &Mesh) -> anyhow::Result<(DataSubjectRequest, pdm_testkit::fake::Person)> {
    let person = californian();
    let subject = mesh.sign_up(&person).await?;
    let r = submit(
        mesh,
        request(RequestKind::CcpaDelete, Regime::Ccpa, &subject, &person),
    )
    .await?;
    let closed = wait_closed(mesh, &r.request_id).await?;
    assert_eq!(closed.status, Status::Completed as i32);
    Ok((r, person))
}

/// GetRequest, once both messages of the request reached `status`.
async fn messages_reach(
    mesh: &Mesh,
    request_id: &str,
    status: DeliveryStatus,
) -> anyhow::Result<DataSubjectRequest> {
    wait_for(mesh, request_id, "both messages' delivery settled", |r| {
        r.messages.len() == 2 && r.messages.iter().all(|m| m.status == status as i32)
    })
    .await
}

/// Outbox rows of the request that still hold an address or a body.
async fn rows_remembering(mesh: &Mesh, request_id: &str) -> anyhow::Result<u64> {
    count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? \
         AND (recipient IS NOT NULL OR length(body) > 0)",
        &[request_id],
    )
    .await
}

/// Outbox rows of the request in `status`.
async fn rows_in(mesh: &Mesh, request_id: &str, status: &str) -> anyhow::Result<u64> {
    count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? AND status = ?",
        &[request_id, status],
    )
    .await
}

// === tests ===

#[tokio::test]
async fn the_deletion_confirmation_arrives_over_starttls_after_authentication_and_the_outbox_forgets_the_address()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = Certificate::issue(dir.path(), "relay")?;
    let password_file = password_file(dir.path())?;
    let server = SmtpServer::start(
        Mode::StartTls,
        dir.path(),
        Some(&cert),
        Some(Auth {
            password_file: &password_file,
            login_only: false,
        }),
    )?;
    let mesh = mesh_with(
        dir.path(),
        &format!("localhost:{}", server.port),
        &[
            ("smtp_tls", "starttls".into()),
            ("smtp_ca_file", cert.ca.display().to_string()),
            ("smtp_username", USER.into()),
            ("smtp_password_file", password_file.display().to_string()),
        ],
    )
    .start()
    .await?;
    let (deletion, person) = deletion(&mesh).await?;

    let confirmation = server
        .wait_for(&[
            &deletion.request_id,
            "Subject: Your privacy request (completed)",
        ])
        .await?;
    assert_eq!(confirmation["rcpt_tos"], serde_json::json!([person.email]));
    assert_eq!(confirmation["mail_from"], "privacy@example.com");
    assert_eq!(
        confirmation["auth_user"], USER,
        "authenticated as the relay user"
    );
    assert!(
        confirmation["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "delivered over TLS: {confirmation}"
    );
    assert!(
        confirmation["text"]
            .as_str()
            .is_some_and(|t| t.contains("have been deleted")),
        "{confirmation}"
    );
    server
        .wait_for(&[&deletion.request_id, "(received)"])
        .await?;

    // The session went to TLS before anything but EHLO, and authenticated only then.
    let events = server.events();
    let first_starttls = events
        .iter()
        .position(|e| e["event"] == "starttls")
        .expect("STARTTLS was used");
    assert!(
        events[..first_starttls]
            .iter()
            .all(|e| e["event"] == "ehlo"),
        "only EHLO before STARTTLS: {events:?}"
    );
    for e in &events {
        if e["event"] != "ehlo" {
            assert!(e["tls"].is_string(), "a command in the clear: {e}");
        }
    }
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "auth" && e["success"] == true && e["mechanism"] == "PLAIN"),
        "{events:?}"
    );

    // The request shows both messages sent at the first attempt...
    let shown = messages_reach(&mesh, &deletion.request_id, DeliveryStatus::Sent).await?;
    let topics: Vec<&str> = shown.messages.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["received", "completed"]);
    for m in &shown.messages {
        assert_eq!(m.attempts, 1, "{m:?}");
        assert_eq!(m.last_error, DeliveryError::Unspecified as i32);
        assert!(m.sent_at.is_some() && m.next_attempt_at.is_none(), "{m:?}");
    }
    // ...and the outbox kept neither address nor body, nor anything in clear.
    assert_eq!(rows_remembering(&mesh, &deletion.request_id).await?, 0);
    assert!(!contains(
        &raw_storage(&mesh, "rights").await,
        &person.email
    ));
    assert!(
        !dir.path().join("outbox.jsonl").exists(),
        "SMTP replaces the file"
    );
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&[("smtp password", PASSWORD)]);
    Ok(())
}

#[tokio::test]
async fn implicit_tls_delivers_from_the_first_byte_and_authenticates_with_login()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = Certificate::issue(dir.path(), "relay")?;
    let password_file = password_file(dir.path())?;
    let server = SmtpServer::start(
        Mode::Implicit,
        dir.path(),
        Some(&cert),
        Some(Auth {
            password_file: &password_file,
            login_only: true,
        }),
    )?;
    let mesh = mesh_with(
        dir.path(),
        &format!("127.0.0.1:{}", server.port),
        &[
            ("smtp_tls", "implicit".into()),
            ("smtp_ca_file", cert.ca.display().to_string()),
            ("smtp_username", USER.into()),
            ("smtp_password_file", password_file.display().to_string()),
        ],
    )
    .start()
    .await?;
    let (deletion, person) = deletion(&mesh).await?;
    let confirmation = server
        .wait_for(&[&deletion.request_id, "(completed)"])
        .await?;
    assert_eq!(confirmation["rcpt_tos"], serde_json::json!([person.email]));
    assert!(confirmation["tls"].is_string(), "{confirmation}");
    assert_eq!(confirmation["auth_user"], USER);
    let events = server.events();
    assert!(
        events.iter().all(|e| e["tls"].is_string()),
        "every command encrypted: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "auth" && e["success"] == true && e["mechanism"] == "LOGIN"),
        "{events:?}"
    );
    messages_reach(&mesh, &deletion.request_id, DeliveryStatus::Sent).await?;
    assert_eq!(rows_remembering(&mesh, &deletion.request_id).await?, 0);
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&[("smtp password", PASSWORD)]);
    Ok(())
}

/// A relay TLS cannot be had with gets nothing: each message is tried
/// `rights.smtp_max_attempts` times, then FAILED with `DELIVERY_ERROR_TLS`, and forgets its
/// address and body.
async fn nothing_goes_in_the_clear(
    server: &SmtpServer,
    dir: &Path,
    settings: &[(&str, String)],
) -> anyhow::Result<()> {
    let mut settings = settings.to_vec();
    settings.push(("smtp_max_attempts", "2".into()));
    let mesh = mesh_with(dir, &format!("127.0.0.1:{}", server.port), &settings)
        .start()
        .await?;
    let (deletion, person) = deletion(&mesh).await?;

    let shown = messages_reach(&mesh, &deletion.request_id, DeliveryStatus::Failed).await?;
    for m in &shown.messages {
        assert_eq!(m.attempts, 2, "{m:?}");
        assert_eq!(m.last_error, DeliveryError::Tls as i32, "{m:?}");
        assert!(m.sent_at.is_none() && m.next_attempt_at.is_none(), "{m:?}");
    }
    assert!(server.messages().is_empty(), "a message reached the server");
    let events = server.events();
    assert!(
        events.iter().filter(|e| e["event"] == "ehlo").count() >= 4,
        "two attempts at two messages: {events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["event"] == "ehlo" || e["event"] == "starttls"),
        "only EHLO (and STARTTLS) may happen without TLS: {events:?}"
    );
    assert_eq!(rows_in(&mesh, &deletion.request_id, "failed").await?, 2);
    assert_eq!(rows_remembering(&mesh, &deletion.request_id).await?, 0);
    let logs = mesh.logs().contents();
    assert!(logs.contains("given up"), "a failure is logged");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_relay_that_does_not_offer_starttls_is_sent_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = SmtpServer::start(Mode::Plain, dir.path(), None, None)?;
    nothing_goes_in_the_clear(&server, dir.path(), &[]).await
}

#[tokio::test]
async fn a_relay_whose_certificate_is_not_trusted_is_sent_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let trusted = Certificate::issue(dir.path(), "trusted")?;
    let impostor = Certificate::issue(dir.path(), "impostor")?;
    let server = SmtpServer::start(Mode::StartTls, dir.path(), Some(&impostor), None)?;
    nothing_goes_in_the_clear(
        &server,
        dir.path(),
        &[("smtp_ca_file", trusted.ca.display().to_string())],
    )
    .await
}
