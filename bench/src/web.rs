//! Page times of the web front (issue 20): the privacy-choices page of a signed-in person,
//! and the privacy team's request queue with 10,000 requests waiting, on SQLite. The web
//! front runs in this process in front of identity, consent and rights, as `svc/web`
//! over mutual TLS; pages are fetched over HTTP/1.1 on loopback, one connection per page
//! as a browser without keep-alive would, and timed from the request to the last byte.

use std::sync::Arc;

use anyhow::Context as _;
use futures_util::{StreamExt as _, stream};
use hyper::StatusCode;
use pdm_proto::rights::v1::{
    Regime, RequestKind, SubmitRequestRequest, rights_service_client::RightsServiceClient,
};
use pdm_testkit::{
    Mesh,
    fake::Person,
    web::{Browser, Front},
};
use pdm_web::domain::totp;
use serde_json::{Value, json};

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
    let front = Front::start(mesh, Arc::new(pdm_runtime::SystemClock), pdm_web::run).await?;
    let result = async {
        let person = Person::new();
        let subject = mesh.sign_up(&person).await?;
        let mut browser = Browser::new(front.addr);
        let signed_in = browser.sign_in(&person.email, &person.password).await?;
        anyhow::ensure!(
            signed_in.status == StatusCode::SEE_OTHER,
            "the person's sign-in answered {}",
            signed_in.status
        );
        let privacy = time_page(&mut browser, "/privacy").await?;

        fill_queue(mesh, &subject).await?;
        let mut console = operator(&front, mesh, "bench").await?;
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

/// A console operator (as `pdm web operator add` makes one), signed in to `front` with
/// their password and the current TOTP code.
async fn operator(front: &Front, mesh: &Mesh, name: &str) -> anyhow::Result<Browser> {
    let operators = pdm_web::operators_admin::open(mesh.settings()).await?;
    let keyring = pdm_crypto::Keyring::new(&front.kek);
    let uri = pdm_web::operators_admin::add(
        &operators,
        &keyring,
        name,
        OPERATOR_PASSWORD,
        chrono::Utc::now(),
    )
    .await?;
    let secret = totp::secret_of_uri(&uri).context("no secret in the provisioning URI")?;
    let step = totp::step(chrono::Utc::now().timestamp());
    let code = totp::hotp(&secret, u64::try_from(step)?, totp::DIGITS).context("no TOTP code")?;
    let mut browser = Browser::new(front.addr);
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
