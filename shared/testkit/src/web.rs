//! The web front started in this process against a real mesh (as `svc/web` over mutual
//! TLS), and a small browser: HTTP/1.1 over a TCP connection per request, with a cookie
//! jar. Shared by the web front's handler tests and the page-time benchmark; the front's
//! own `run` is passed in, so this crate does not depend on it.

use std::{collections::BTreeMap, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode, header::HeaderMap};
use hyper_util::rt::TokioIo;
use pdm_runtime::{ServiceContext, SharedClock, ShutdownSignal, security::Security};
use pdm_tls::identity::Caller;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::Mesh;

/// Longest the front may take to answer `/healthz` after it starts.
const START_WITHIN: Duration = Duration::from_secs(60);

/// A web front running in this process.
pub struct Front {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its key-encryption key (operators' TOTP secrets are sealed under it).
    pub kek: [u8; 32],
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Front {
    /// Starts `run` (the web front's entry point) on the mesh's settings, reading `clock`,
    /// with a fresh key-encryption key; ready once `/healthz` answers 200.
    pub async fn start<F, Fut>(mesh: &Mesh, clock: SharedClock, run: F) -> anyhow::Result<Self>
    where
        F: FnOnce(ServiceContext, TcpListener, ShutdownSignal) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        // The web caller's certificate, issued by the mesh's CA like the services'.
        mesh.client_tls(&Caller::Service("web".to_owned()))?;
        let settings = Arc::new(mesh.settings().clone());
        let mut kek = [0u8; 32];
        getrandom::fill(&mut kek).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ctx = ServiceContext {
            name: "web",
            security: Security::load(&settings)?,
            settings,
            clock,
            kek: Arc::new(kek),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(ctx, listener, Box::pin(stop.clone().cancelled_owned())));
        let front = Self {
            addr,
            kek,
            stop,
            task,
        };
        // Ready when /healthz answers (the sessions table is migrated by then).
        let started = std::time::Instant::now();
        loop {
            if let Ok(page) = Browser::new(addr).get("/healthz").await
                && page.status == StatusCode::OK
            {
                return Ok(front);
            }
            if front.task.is_finished() || started.elapsed() > START_WITHIN {
                front.stop().await?;
                anyhow::bail!("the web front did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the front and waits for it to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}

/// A response.
#[derive(Debug)]
pub struct Page {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body (pages are UTF-8).
    pub body: String,
}

impl Page {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The value of the first hidden input named `name` after `after` in the page.
    pub fn input_after(&self, after: &str, name: &str) -> Option<String> {
        let start = self.body.find(after)?;
        let rest = &self.body[start..];
        let marker = format!("name=\"{name}\" value=\"");
        let at = rest.find(&marker)? + marker.len();
        let end = rest[at..].find('"')?;
        Some(rest[at..at + end].to_owned())
    }

    /// The page's CSRF token.
    pub fn csrf(&self) -> Option<String> {
        self.input_after("", "csrf")
    }
}

/// A browser: a cookie jar, optional extra headers.
pub struct Browser {
    addr: SocketAddr,
    /// Cookies by name, as the front set them.
    pub cookies: BTreeMap<String, String>,
    /// Headers sent with every request (`Sec-GPC`, ...).
    pub extra: Vec<(String, String)>,
}

impl Browser {
    /// A browser with no cookies, talking to `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        self.send("GET", path, None).await
    }

    /// POST a URL-encoded form to `path`.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
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
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        let page = Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).context("not UTF-8")?,
        };
        for cookie in page.set_cookies() {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie.as_str(), ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Ok(page)
    }

    /// Signs a person in through the form; the page the sign-in answered with.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> anyhow::Result<Page> {
        let form = self.get("/sign-in").await?;
        let csrf = form.csrf().context("no csrf on the sign-in form")?;
        self.post(
            "/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}
