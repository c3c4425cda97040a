//! A small SMTP submission client for the outbox: one message per session, always over
//! TLS to anything but a loopback relay.
//!
//! - **TLS** (`rights.smtp_tls`): `starttls` (RFC 3207, port 587) upgrades the session and
//!   refuses to go on when the relay does not offer STARTTLS or the handshake fails: no
//!   command after EHLO is ever sent in the clear. `implicit` (RFC 8314, port 465) speaks
//!   TLS from the first byte. `none` is only accepted for a loopback relay (a mail catcher
//!   such as Mailpit under `make run`, a relay in the same pod) and checked again against
//!   the address actually connected to. The relay's certificate is verified for its host
//!   name against the CAs of `rights.smtp_ca_file`, else the Mozilla roots (webpki-roots).
//! - **AUTH** PLAIN (else LOGIN) after TLS only, with `rights.smtp_username` and the
//!   password read from `rights.smtp_password_file` at each session (a rotated Kubernetes
//!   Secret applies without a restart). The password is never logged or kept.
//! - **Errors** carry a category ([`ErrorCategory`]) and at most the reply's codes: a
//!   server's words may quote the address, so they are dropped.
//!
//! What is sent: [`message`]. Replies: [`reply`].

pub mod message;
mod reply;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

pub use crate::domain::delivery::ErrorCategory;
pub use message::Mail;
use reply::{Capabilities, Gather, Mechanism, Reply};

/// The longest reply line read (RFC 5321 allows 512 octets; some servers send more).
const MAX_REPLY_LINE: u64 = 4096;

/// How the session is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which the relay must offer.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// No TLS: loopback relays only.
    None,
}

impl TlsMode {
    /// The mode of a `rights.smtp_tls` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "starttls" => Some(Self::StartTls),
            "implicit" => Some(Self::Implicit),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Implicit => 465,
            Self::None => 25,
        }
    }
}

/// Who we authenticate as. The password stays in its file until a session needs it.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// The file holding the password (a mounted Secret); a final newline is ignored.
    pub password_file: PathBuf,
}

impl Credentials {
    /// Reads the password.
    pub fn password(&self) -> Result<Zeroizing<String>, Error> {
        read_password(&self.password_file)
    }
}

/// Reads a password file; a final line end is not part of the password.
pub fn read_password(path: &Path) -> Result<Zeroizing<String>, Error> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorCategory::Auth,
            format!("password file {}: {}", path.display(), e.kind()),
        )
    })?);
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(Error::new(
            ErrorCategory::Auth,
            format!("password file {} is empty", path.display()),
        ));
    }
    Ok(Zeroizing::new(password.to_owned()))
}

/// A failed delivery: its category and what may be logged (codes, never addresses or
/// the server's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("smtp {category}: {detail}")]
pub struct Error {
    /// What kind of failure.
    pub category: ErrorCategory,
    /// Where and which codes.
    pub detail: String,
}

impl Error {
    /// A failure of `category`; `detail` must hold no address and no server's words.
    pub fn new(category: ErrorCategory, detail: impl Into<String>) -> Self {
        Self {
            category,
            detail: detail.into(),
        }
    }
}

/// What a relay is, as the settings describe it (checked: see `RightsSettings::relay`).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Host name or IP address (the name the certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// PEM file of the CAs to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Authentication, if the relay wants it.
    pub credentials: Option<Credentials>,
    /// Sender address of every message.
    pub from: String,
    /// The name we give in EHLO.
    pub helo: String,
    /// Bound of connecting, of the TLS handshake and of waiting for each reply.
    pub timeout: Duration,
}

/// An SMTP relay, ready to send.
#[derive(Clone)]
pub struct Relay {
    config: RelayConfig,
    server_name: ServerName<'static>,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("tls", &self.config.tls)
            .finish_non_exhaustive()
    }
}

/// Whether `host` names this machine: `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host:port` (`[v6]:port`; no port: `default_port`).
pub fn split_host_port(relay: &str, default_port: u16) -> Option<(String, u16)> {
    let relay = relay.trim();
    if let Some(rest) = relay.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return (!host.is_empty()).then(|| (host.to_owned(), port));
    }
    let (host, port) = match relay.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()?),
        Some(_) => return None,
        None => (relay, default_port),
    };
    let ok = !host.is_empty()
        && port != 0
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then(|| (host.to_owned(), port))
}

impl Relay {
    /// A relay from checked settings: the CA file is read now, so a bad one stops the start.
    pub fn new(config: RelayConfig) -> Result<Self, String> {
        let server_name = ServerName::try_from(config.host.clone())
            .map_err(|_| format!("{} is not a host name or address", config.host))?;
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => Some(TlsConnector::from(Arc::new(
                client_config(config.ca_file.as_deref())?,
            ))),
        };
        Ok(Self {
            config,
            server_name,
            tls,
        })
    }

    /// The sender address.
    pub fn from(&self) -> &str {
        &self.config.from
    }

    /// How long one session can take at most (connecting, two handshakes and a dozen
    /// replies, each within the timeout).
    pub fn session_bound(&self) -> Duration {
        self.config.timeout.saturating_mul(16)
    }

    /// Sends one message, from connecting to QUIT. `Ok` once the relay accepted it.
    pub async fn send(&self, mail: &Mail<'_>) -> Result<(), Error> {
        for address in [mail.from, mail.to] {
            if !message::valid_address(address) {
                return Err(Error::new(
                    ErrorCategory::Recipient,
                    "an address SMTP cannot carry",
                ));
            }
        }
        let mut session = self.connect().await?;
        let outcome = session.transaction(self, mail).await;
        // A polite end while the session is sound (an accepted message is delivered
        // whatever QUIT gets); after a timeout, a broken stream or a failed handshake the
        // connection is just dropped.
        let sound = match &outcome {
            Ok(()) => true,
            Err(e) => matches!(
                e.category,
                ErrorCategory::Auth
                    | ErrorCategory::Sender
                    | ErrorCategory::Recipient
                    | ErrorCategory::Message
                    | ErrorCategory::Deferred
            ),
        };
        if sound {
            let _ = session.command("QUIT").await;
        }
        outcome
    }

    async fn connect(&self) -> Result<Session, Error> {
        let c = &self.config;
        let tcp = tokio::time::timeout(c.timeout, TcpStream::connect((c.host.as_str(), c.port)))
            .await
            .map_err(|_| Error::new(ErrorCategory::Connect, "connect timed out"))?
            .map_err(|e| Error::new(ErrorCategory::Connect, format!("connect: {}", e.kind())))?;
        let _ = tcp.set_nodelay(true);
        if c.tls == TlsMode::None {
            // The name said loopback; the address connected to must agree.
            let peer = tcp.peer_addr().map_err(|e| {
                Error::new(ErrorCategory::Connect, format!("connect: {}", e.kind()))
            })?;
            if !peer.ip().is_loopback() {
                return Err(Error::new(
                    ErrorCategory::Tls,
                    "rights.smtp_tls = none reached a relay that is not on loopback: nothing sent",
                ));
            }
        }
        let io: Box<dyn Io> = match (&self.tls, c.tls) {
            (Some(tls), TlsMode::Implicit) => Box::new(self.handshake(tls, tcp).await?),
            _ => Box::new(tcp),
        };
        let mut session = Session {
            io: BufReader::new(io),
            timeout: c.timeout,
            tls: c.tls == TlsMode::Implicit,
        };
        session
            .expect("greeting", 220, ErrorCategory::Protocol)
            .await?;
        Ok(session)
    }

    async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        tls: &TlsConnector,
        stream: S,
    ) -> Result<tokio_rustls::client::TlsStream<S>, Error> {
        tokio::time::timeout(
            self.config.timeout,
            tls.connect(self.server_name.clone(), stream),
        )
        .await
        .map_err(|_| Error::new(ErrorCategory::Tls, "TLS handshake timed out"))?
        .map_err(|e| Error::new(ErrorCategory::Tls, format!("TLS handshake: {e}")))
    }
}

/// The TLS client configuration: the CAs of `ca_file`, else the Mozilla roots.
fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One SMTP session.
struct Session {
    io: BufReader<Box<dyn Io>>,
    timeout: Duration,
    /// Whether the session is encrypted by now.
    tls: bool,
}

impl Session {
    /// EHLO, STARTTLS, AUTH, then the message.
    async fn transaction(&mut self, relay: &Relay, mail: &Mail<'_>) -> Result<(), Error> {
        let c = &relay.config;
        let mut caps = self.ehlo(&c.helo).await?;
        if c.tls == TlsMode::StartTls {
            if !caps.starttls {
                return Err(Error::new(
                    ErrorCategory::Tls,
                    "the relay does not offer STARTTLS: nothing sent in the clear",
                ));
            }
            let ready = self.command("STARTTLS").await?;
            if ready.code != 220 {
                // Even a temporary refusal is a TLS failure: the session cannot go on.
                return Err(Error::new(
                    ErrorCategory::Tls,
                    format!("STARTTLS: {}", ready.status()),
                ));
            }
            // Whatever the relay sent after its 220 came in the clear and could have been
            // injected (CVE-2011-0411): refuse rather than read it as TLS-protected.
            if !self.io.buffer().is_empty() {
                return Err(Error::new(
                    ErrorCategory::Tls,
                    "data after the STARTTLS reply, before the handshake",
                ));
            }
            let Some(tls) = &relay.tls else {
                return Err(Error::new(ErrorCategory::Tls, "no TLS configuration"));
            };
            // The plain stream moves into the TLS one; a stand-in holds its place meanwhile.
            let stand_in: Box<dyn Io> = Box::new(tokio::io::duplex(1).0);
            let plain = std::mem::replace(&mut self.io, BufReader::new(stand_in)).into_inner();
            self.io = BufReader::new(Box::new(relay.handshake(tls, plain).await?));
            self.tls = true;
            // What the relay offered before TLS no longer counts (RFC 3207 §4.2).
            caps = self.ehlo(&c.helo).await?;
        }
        if let Some(credentials) = &c.credentials {
            self.authenticate(&caps, credentials).await?;
        }
        let utf8 = !mail.from.is_ascii() || !mail.to.is_ascii();
        if utf8 && !caps.smtputf8 {
            return Err(Error::new(
                ErrorCategory::Recipient,
                "the address is not ASCII and the relay does not offer SMTPUTF8",
            ));
        }
        let params = if utf8 { " SMTPUTF8" } else { "" };
        self.expect_after(
            &format!("MAIL FROM:<{}>{params}", mail.from),
            250,
            ErrorCategory::Sender,
        )
        .await?;
        let rcpt = self.command(&format!("RCPT TO:<{}>", mail.to)).await?;
        if !matches!(rcpt.code, 250 | 251) {
            return Err(refusal("RCPT TO", &rcpt, ErrorCategory::Recipient));
        }
        self.expect_after("DATA", 354, ErrorCategory::Message)
            .await?;
        let data = message::data_section(&message::render(mail));
        self.write(&data).await?;
        self.expect("end of data", 250, ErrorCategory::Message)
            .await?;
        Ok(())
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Capabilities, Error> {
        let reply = self.command(&format!("EHLO {helo}")).await?;
        if reply.code != 250 {
            return Err(refusal("EHLO", &reply, ErrorCategory::Protocol));
        }
        Ok(Capabilities::of(&reply))
    }

    async fn authenticate(
        &mut self,
        caps: &Capabilities,
        credentials: &Credentials,
    ) -> Result<(), Error> {
        if !self.tls {
            // Settings never allow it; kept here so no code path can send a password in clear.
            return Err(Error::new(ErrorCategory::Auth, "no AUTH without TLS"));
        }
        let Some(mechanism) = caps.auth_mechanism() else {
            return Err(Error::new(
                ErrorCategory::Auth,
                "the relay offers neither AUTH PLAIN nor AUTH LOGIN",
            ));
        };
        let password = credentials.password()?;
        let reply = match mechanism {
            Mechanism::Plain => {
                let token =
                    Zeroizing::new(format!("\0{}\0{}", credentials.username, password.as_str()));
                let line =
                    Zeroizing::new(format!("AUTH PLAIN {}", STANDARD.encode(token.as_bytes())));
                self.command(&line).await?
            }
            Mechanism::Login => {
                let first = self.command("AUTH LOGIN").await?;
                if first.code != 334 {
                    return Err(refusal("AUTH LOGIN", &first, ErrorCategory::Auth));
                }
                let user = self
                    .command(&STANDARD.encode(credentials.username.as_bytes()))
                    .await?;
                if user.code != 334 {
                    return Err(refusal("AUTH LOGIN", &user, ErrorCategory::Auth));
                }
                let line = Zeroizing::new(STANDARD.encode(password.as_bytes()));
                self.command(&line).await?
            }
        };
        if reply.code != 235 {
            return Err(refusal("AUTH", &reply, ErrorCategory::Auth));
        }
        Ok(())
    }

    /// Sends a command line and reads its reply.
    async fn command(&mut self, line: &str) -> Result<Reply, Error> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 2));
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes).await?;
        self.reply().await
    }

    /// Sends a command and expects `code`; another reply is a failure of `category`
    /// (4yz: deferred).
    async fn expect_after(
        &mut self,
        line: &str,
        code: u16,
        category: ErrorCategory,
    ) -> Result<Reply, Error> {
        let reply = self.command(line).await?;
        let verb = line.split([' ', ':']).next().unwrap_or_default();
        if reply.code == code {
            Ok(reply)
        } else {
            Err(refusal(verb, &reply, category))
        }
    }

    /// Reads a reply and expects `code`.
    async fn expect(
        &mut self,
        what: &str,
        code: u16,
        category: ErrorCategory,
    ) -> Result<Reply, Error> {
        let reply = self.reply().await?;
        if reply.code == code {
            Ok(reply)
        } else {
            Err(refusal(what, &reply, category))
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let io = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| Error::new(ErrorCategory::Timeout, "sending timed out"))?
        .map_err(|e| Error::new(ErrorCategory::Protocol, format!("send: {}", e.kind())))
    }

    async fn reply(&mut self) -> Result<Reply, Error> {
        let mut gather = Gather::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(
                self.timeout,
                (&mut self.io)
                    .take(MAX_REPLY_LINE)
                    .read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| Error::new(ErrorCategory::Timeout, "no reply in time"))?
            .map_err(|e| Error::new(ErrorCategory::Protocol, format!("read: {}", e.kind())))?;
            if read == 0 {
                return Err(Error::new(
                    ErrorCategory::Protocol,
                    "the relay closed the connection",
                ));
            }
            if line.last() != Some(&b'\n') {
                return Err(Error::new(ErrorCategory::Protocol, "reply line too long"));
            }
            let text = String::from_utf8_lossy(&line);
            match gather.push(&text) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(()) => return Err(Error::new(ErrorCategory::Protocol, "not an SMTP reply")),
            }
        }
    }
}

/// The failure a reply means at a step: 4yz is deferred, anything else not expected is
/// `category`.
fn refusal(step: &str, reply: &Reply, category: ErrorCategory) -> Error {
    let category = if reply.transient() {
        ErrorCategory::Deferred
    } else if reply.positive() || reply.intermediate() {
        // A success code where another was due: the relay does not follow the protocol.
        ErrorCategory::Protocol
    } else if category == ErrorCategory::Sender && reply.code == 530 {
        // 530: authentication required.
        ErrorCategory::Auth
    } else {
        category
    };
    Error::new(category, format!("{step}: {}", reply.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_are_host_and_port() {
        assert_eq!(
            split_host_port("smtp.example.com:587", 25),
            Some(("smtp.example.com".into(), 587))
        );
        assert_eq!(
            split_host_port("smtp.example.com", 465),
            Some(("smtp.example.com".into(), 465))
        );
        assert_eq!(
            split_host_port("[::1]:2525", 25),
            Some(("::1".into(), 2525))
        );
        assert_eq!(
            split_host_port("127.0.0.1:1025", 25),
            Some(("127.0.0.1".into(), 1025))
        );
        for bad in [
            "",
            ":25",
            "host:",
            "host:0",
            "host:port",
            "a b:25",
            "::1:25",
            "[::1",
            "h/x:25",
        ] {
            assert_eq!(split_host_port(bad, 25), None, "{bad:?}");
        }
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "smtp.example.com",
            "10.0.0.1",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn a_refusal_is_deferred_when_temporary_and_keeps_only_codes() {
        let reply = Reply {
            code: 550,
            lines: vec!["5.1.1 <ada@example.org> unknown".into()],
        };
        let e = refusal("RCPT TO", &reply, ErrorCategory::Recipient);
        assert_eq!(e.category, ErrorCategory::Recipient);
        assert_eq!(e.detail, "RCPT TO: 550 5.1.1");
        assert!(!e.to_string().contains("ada@"));
        let later = Reply {
            code: 451,
            lines: vec!["4.3.0 later".into()],
        };
        assert_eq!(
            refusal("MAIL", &later, ErrorCategory::Sender).category,
            ErrorCategory::Deferred
        );
        let auth = Reply {
            code: 530,
            lines: vec!["5.7.0 Authentication required".into()],
        };
        assert_eq!(
            refusal("MAIL", &auth, ErrorCategory::Sender).category,
            ErrorCategory::Auth
        );
    }

    #[test]
    fn the_password_file_loses_its_final_newline_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret pass\n").expect("write");
        assert_eq!(read_password(&path).expect("read").as_str(), "s3cret pass");
        std::fs::write(&path, "s3cret\r\n").expect("write");
        assert_eq!(read_password(&path).expect("read").as_str(), "s3cret");
        std::fs::write(&path, "\n").expect("write");
        let empty = read_password(&path).expect_err("empty");
        assert_eq!(empty.category, ErrorCategory::Auth);
        let missing = read_password(&dir.path().join("absent")).expect_err("missing");
        assert!(!missing.detail.contains("s3cret"));
    }

    /// A relay at `127.0.0.1:<port>` over STARTTLS with the built-in roots.
    fn relay_at(port: u16) -> Relay {
        Relay::new(RelayConfig {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::StartTls,
            ca_file: None,
            credentials: None,
            from: "privacy@example.com".into(),
            helo: "example.com".into(),
            timeout: Duration::from_secs(5),
        })
        .expect("relay")
    }

    /// A fake server: greets, offers `ehlo` to EHLO, then answers STARTTLS with
    /// `starttls`; returns every line the client sent.
    async fn fake_server(
        ehlo: &'static str,
        starttls: &'static str,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = Vec::new();
            write.write_all(b"220 fake ESMTP\r\n").await.expect("greet");
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = if line.starts_with("EHLO") {
                    ehlo
                } else if line == "STARTTLS" {
                    starttls
                } else {
                    "250 ok\r\n"
                };
                seen.push(line);
                if write.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
            seen
        });
        (port, server)
    }

    fn mail() -> Mail<'static> {
        Mail {
            from: "privacy@example.com",
            to: "ada@example.org",
            subject: "s",
            body: "b",
            id: "m1",
            date: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        }
    }

    #[tokio::test]
    async fn without_starttls_offered_nothing_follows_ehlo() {
        let (port, server) = fake_server("250-fake\r\n250 8BITMIME\r\n", "").await;
        let error = relay_at(port).send(&mail()).await.expect_err("refused");
        assert_eq!(error.category, ErrorCategory::Tls);
        let seen = server.await.expect("server");
        assert_eq!(seen, ["EHLO example.com"], "nothing but EHLO in the clear");
    }

    #[tokio::test]
    async fn data_injected_after_the_starttls_reply_is_refused() {
        let (port, server) = fake_server(
            "250-fake\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n250 injected\r\n",
        )
        .await;
        let error = relay_at(port).send(&mail()).await.expect_err("refused");
        assert_eq!(error.category, ErrorCategory::Tls);
        assert!(error.detail.contains("after the STARTTLS reply"), "{error}");
        let seen = server.await.expect("server");
        assert_eq!(seen, ["EHLO example.com", "STARTTLS"]);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        assert!(client_config(Some(&path)).is_err());
        assert!(client_config(Some(&dir.path().join("absent.pem"))).is_err());
        assert!(client_config(None).is_ok());
    }
}
