//! Page times of the web front (issue 20): the privacy-choices page of a signed-in person,
//! and the privacy team's request queue with 10,000 requests waiting, on SQLite. The web
//! front runs in this process in front of identity, consent and rights, as `svc/web`
//! over mutual TLS; pages are fetched over HTTP/1.1 on loopback, one connection per page
//! as a browser without keep-alive would, and timed from the request to the last byte.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures_util::{StreamExt as _, stream};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use pdm_proto::rights::v1::{
    Regime, RequestKind, SubmitRequestRequest, rights_service_client::RightsServiceClient,
};
use pdm_runtime::{ServiceContext, security::Security};
use pdm_testkit::{Mesh, fake::Person};
use pdm_tls::identity::Caller;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{figures::round3, harness};

/// Requests in the queue, as the issue names.
const QUEUED: usize = 10_000;
/// Submissions in flight while filling the queue.
const IN_FLIGHT: usize = 32;
/// Page loads per page measured (after 20 to warm up).
const LOADS: usize = 200;
const WARM_UP: usize = 20;
const OPERATOR_PASSWORD: &str = "a long operator password";

/// Runs the page-time benchmarks.
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    if !wanted("web.page") {
        return Ok(Vec::new());
    }
    let mesh = harness::start(
        &["identity", "consent", "rights"],
        vec![
            ("rights.services".to_owned(), "identity,consent".to_owned()),
            ("rights.retention".to_owned(), "false".to_owned()),
        ],
    )
    .await?;
    let result = measure(&mesh).await;
    harness::stop(mesh).await;
    result
}

async fn measure(mesh: &Mesh) -> anyhow::Result<Vec<Value>> {
    let front = Front::start(mesh).await?;
    let result = async {
        let person = Person::new();
        let subject = mesh.sign_up(&person).await?;
        let mut browser = Browser::new(front.addr);
        browser.sign_in(&person.email, &person.password).await?;
        let privacy = time_page(&mut browser, "/privacy").await?;

        fill_queue(mesh, &subject).await?;
        let mut console = front.operator(mesh, "bench").await?;
        let queue = time_page(&mut console, "/console").await?;
        anyhow::ensure!(
            queue.body_bytes > 10_000,
            "the queue page shows no requests"
        );
        Ok(vec![
            privacy.to_json("web.page.privacy_choices", 0),
            queue.to_json("web.page.console_queue", QUEUED),
        ])
    }
    .await;
    front.stop().await?;
    result
}

/// Submits [`QUEUED`] access requests of `subject`, each waiting for its verification.
async fn fill_queue(mesh: &Mesh, subject: &str) -> anyhow::Result<()> {
    let rights = RightsServiceClient::new(mesh.channel("rights"));
    let submitted: Vec<anyhow::Result<()>> = stream::iter(0..QUEUED)
        .map(|i| {
            let mut rights = rights.clone();
            let request = SubmitRequestRequest {
                kind: RequestKind::Access as i32,
                regime: Regime::Gdpr as i32,
                subject_id: subject.to_owned(),
                client_reference: format!("bench-queue-{i}"),
                ..Default::default()
            };
            async move {
                rights.submit_request(request).await?;
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    submitted.into_iter().collect()
}

/// Load times of one page.
struct Timed {
    ms: Vec<f64>,
    body_bytes: usize,
}

impl Timed {
    fn to_json(&self, name: &str, queued: usize) -> Value {
        let mut sorted = self.ms.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            round3(sorted.get(i).copied().unwrap_or(0.0))
        };
        let mut row = json!({
            "name": name,
            "database": "sqlite",
            "loads": sorted.len(),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": at(1.0),
            "page_bytes": self.body_bytes,
            "note": "HTTP/1.1 on loopback, a connection per load, from the request to the last byte",
        });
        if queued > 0 {
            row["requests_queued"] = json!(queued);
        }
        row
    }
}

async fn time_page(browser: &mut Browser, path: &str) -> anyhow::Result<Timed> {
    let mut ms = Vec::with_capacity(LOADS);
    let mut body_bytes = 0;
    for i in 0..WARM_UP + LOADS {
        let started = std::time::Instant::now();
        let page = browser.get(path).await?;
        let took = started.elapsed();
        anyhow::ensure!(
            page.status == StatusCode::OK,
            "{path} answered {}",
            page.status
        );
        body_bytes = page.body.len();
        if i >= WARM_UP {
            ms.push(took.as_secs_f64() * 1000.0);
        }
    }
    Ok(Timed { ms, body_bytes })
}

/// The web front, in this process.
struct Front {
    addr: SocketAddr,
    kek: [u8; 32],
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Front {
    async fn start(mesh: &Mesh) -> anyhow::Result<Self> {
        // The web caller's certificate, issued by the mesh's CA like the services'.
        mesh.client_tls(&Caller::Service("web".to_owned()))?;
        let settings = Arc::new(mesh.settings().clone());
        let mut kek = [0u8; 32];
        getrandom::fill(&mut kek).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ctx = ServiceContext {
            name: "web",
            security: Security::load(&settings)?,
            settings,
            clock: Arc::new(pdm_runtime::SystemClock),
            kek: Arc::new(kek),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pdm_web::run(
            ctx,
            listener,
            Box::pin(stop.clone().cancelled_owned()),
        ));
        let started = std::time::Instant::now();
        while Browser::new(addr)
            .get("/healthz")
            .await
            .map(|p| p.status != StatusCode::OK)
            .unwrap_or(true)
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the web front did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            addr,
            kek,
            stop,
            task,
        })
    }

    /// A console operator (as `pdm web operator add` makes one), signed in with their
    /// password and the current TOTP code.
    async fn operator(&self, mesh: &Mesh, name: &str) -> anyhow::Result<Browser> {
        let operators = pdm_web::operators_admin::open(mesh.settings()).await?;
        let keyring = pdm_crypto::Keyring::new(&self.kek);
        let uri = pdm_web::operators_admin::add(
            &operators,
            &keyring,
            name,
            OPERATOR_PASSWORD,
            chrono::Utc::now(),
        )
        .await?;
        let secret = base32(
            uri.split_once("secret=")
                .and_then(|(_, rest)| rest.split('&').next())
                .context("no secret in the provisioning URI")?,
        )?;
        let step = pdm_web::domain::totp::step(chrono::Utc::now().timestamp());
        let code = pdm_web::domain::totp::hotp(&secret, u64::try_from(step)?, 6)
            .context("no TOTP code")?;
        let mut browser = Browser::new(self.addr);
        let form = browser.get("/console/sign-in").await?;
        let csrf = form.csrf().context("no csrf on the console's sign-in")?;
        let page = browser
            .post(
                "/console/sign-in",
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("password", OPERATOR_PASSWORD),
                    ("code", &format!("{code:06}")),
                ],
            )
            .await?;
        anyhow::ensure!(
            page.status == StatusCode::SEE_OTHER,
            "the operator's sign-in answered {}",
            page.status
        );
        Ok(browser)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}

/// RFC 4648 base32 without padding, as provisioning URIs carry secrets.
fn base32(encoded: &str) -> anyhow::Result<Vec<u8>> {
    let (mut bits, mut buffer, mut out) = (0u32, 0u32, Vec::new());
    for c in encoded.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => anyhow::bail!("not base32"),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff)?);
        }
    }
    Ok(out)
}

/// A page as the browser got it.
struct Page {
    status: StatusCode,
    body: String,
}

impl Page {
    /// The form's CSRF token.
    fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker)? + marker.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }
}

/// A browser with a cookie jar: one HTTP/1.1 connection per request.
struct Browser {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> anyhow::Result<()> {
        let form = self.get("/sign-in").await?;
        let csrf = form.csrf().context("no csrf on the sign-in form")?;
        let page = self
            .post(
                "/sign-in",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await?;
        anyhow::ensure!(
            page.status == StatusCode::SEE_OTHER,
            "the person's sign-in answered {}",
            page.status
        );
        Ok(())
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(body)).await
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Page> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("cookie", jar.join("; "));
        }
        if body.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = request.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        for cookie in response.headers().get_all("set-cookie") {
            let Ok(cookie) = cookie.to_str() else {
                continue;
            };
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(Page {
            status,
            body: String::from_utf8(bytes.to_vec()).context("not UTF-8")?,
        })
    }
}

/// Percent-encodes a form value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
