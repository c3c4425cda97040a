//! A web front started in-process against a real mesh (identity and consent on
//! ephemeral ports, over mutual TLS as `svc/web`), and a small browser: HTTP/1.1 over a
//! TCP connection per request, with a cookie jar.
#![allow(dead_code)]

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode, header::HeaderMap};
use hyper_util::rt::TokioIo;
use pdm_runtime::{ServiceContext, SharedClock, security::Security};
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// A mesh with the web front in front of it.
pub struct Site {
    pub mesh: Mesh,
    pub addr: SocketAddr,
    /// The web front's key-encryption key (operators' TOTP secrets are sealed under it).
    pub kek: [u8; 32],
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Site {
    /// Identity and consent, then the web front on the mesh's settings plus `web`
    /// settings (`("web.sign_in_attempts", "3")`), reading `clock` (the system's if None).
    pub async fn start(
        settings: &[(&str, &str)],
        clock: Option<SharedClock>,
    ) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent);
        Self::start_on(builder, settings, clock).await
    }

    /// [`Site::start`] with the rights service too (its requests fanning out to identity
    /// and consent; its messages to a file in the data directory).
    pub async fn start_with_rights(settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent)
            .with(pdm_rights::Rights)
            .setting("rights.services", "identity,consent")
            .setting("rights.retention", "false");
        Self::start_on(builder, settings, None).await
    }

    /// The console's mesh: identity, consent, rights, transfers and retention (purge runs
    /// asking identity and consent; no scheduled purge).
    pub async fn start_console(clock: SharedClock) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent)
            .with(pdm_rights::Rights)
            .with(pdm_transfers::Transfers)
            .with(pdm_retention::Retention)
            .with(pdm_incidents::Incidents)
            .clock(clock.clone())
            .setting("rights.services", "identity,consent")
            .setting("rights.retention", "false")
            .setting("retention.services", "identity,consent")
            .setting("retention.purge_interval_minutes", 0);
        Self::start_on(builder, &[], Some(clock)).await
    }

    /// Adds a console operator through what `pdm web operator add` runs; the TOTP
    /// provisioning URI.
    pub async fn operator(&self, name: &str, password: &str) -> anyhow::Result<String> {
        let operators = pdm_web::operators_admin::open(self.mesh.settings()).await?;
        let keyring = pdm_crypto::Keyring::new(&self.kek);
        pdm_web::operators_admin::add(&operators, &keyring, name, password, chrono::Utc::now())
            .await
    }

    async fn start_on(
        mut builder: TestMesh,
        settings: &[(&str, &str)],
        clock: Option<SharedClock>,
    ) -> anyhow::Result<Self> {
        for (key, value) in settings {
            builder = builder.setting(key, value);
        }
        let mesh = builder.start().await?;
        // The web caller's certificate, issued by the mesh's CA like the services'.
        mesh.client_tls(&Caller::Service("web".to_owned()))?;
        let settings = Arc::new(mesh.settings().clone());
        let mut kek = [0u8; 32];
        getrandom::fill(&mut kek).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ctx = ServiceContext {
            name: "web",
            security: Security::load(&settings)?,
            settings,
            clock: clock.unwrap_or_else(|| Arc::new(pdm_runtime::SystemClock)),
            kek: Arc::new(kek),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pdm_web::run(
            ctx,
            listener,
            Box::pin(stop.clone().cancelled_owned()),
        ));
        let site = Self {
            mesh,
            addr,
            kek,
            stop,
            task,
        };
        // Ready when /healthz answers (the sessions table is migrated by then).
        let started = std::time::Instant::now();
        loop {
            if let Ok(page) = Browser::new(&site).get("/healthz").await
                && page.status == StatusCode::OK
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed().as_secs() < 60,
                "the web front did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(site)
    }

    /// Signs a fresh person up through identity.
    pub async fn person(&self) -> anyhow::Result<(Person, String)> {
        let person = Person::new();
        let subject = self.mesh.sign_up(&person).await?;
        Ok((person, subject))
    }

    /// A direct look at the web's own sessions table.
    pub async fn sessions(&self) -> anyhow::Result<pdm_web::store::Sessions> {
        let target = pdm_web::database_target(self.mesh.settings())?;
        let db = pdm_runtime::db::connect(self.mesh.settings(), &target).await?;
        Ok(pdm_web::store::Sessions::new(
            db,
            chrono::Duration::minutes(30),
            chrono::Duration::hours(12),
        ))
    }

    /// Stops the web front.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}

/// A response.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
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
    pub cookies: BTreeMap<String, String>,
    pub extra: Vec<(String, String)>,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new(site: &Site) -> Self {
        Self {
            addr: site.addr,
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
            let Some((pair, attributes)) = cookie.split_once(';').or(Some((cookie.as_str(), "")))
            else {
                continue;
            };
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

    /// Signs in through the form; the page the sign-in answered with.
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
