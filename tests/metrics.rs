//! Prometheus metrics (issue 9, "Metrics for Prometheus on an HTTP port per service"):
//! real services called over mutual TLS, then `/metrics` scraped over real HTTP. Every
//! RPC counted by server, method and status code with its duration, and the domain
//! series: consent decisions, telemetry events, the rights queue, purge runs.
//!
//! The registry is process-wide, so counters are compared before and after each call;
//! this binary runs one rights service, so the queue gauges are read as they are.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
};

use anyhow::Context as _;
use chrono::{TimeZone, Utc};
use pdm_metrics::CONTENT_TYPE;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{CheckProcessingRequest, Reason},
    retention::v1::{RunPurgeRequest, RunStatus},
    rights::v1::{Regime, RequestKind, Status as RequestStatus, SubmitRequestRequest},
    subject::v1::{EraseSubjectRequest, subject_data_service_client::SubjectDataServiceClient},
    telemetry::v1::{self as telemetry, DropReason, EventKind},
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// `/metrics` on an ephemeral port of this process, as `pdm serve` runs it on
/// `metrics.listen`; stopped when dropped.
struct Endpoint {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Endpoint {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        tokio::spawn(pdm_metrics::serve(listener, stop.clone().cancelled_owned()));
        Ok(Self { addr, stop })
    }

    /// `GET /metrics`, checked and parsed.
    async fn scrape(&self) -> anyhow::Result<Scrape> {
        let response = get(self.addr, "GET", "/metrics").await?;
        anyhow::ensure!(response.status == 200, "{response:?}");
        anyhow::ensure!(
            response.header("content-type") == Some(CONTENT_TYPE),
            "{:?}",
            response.headers
        );
        Scrape::parse(&response.body)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a connection of its own, read to its end.
async fn get(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .context("not an HTTP/1.1 status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    // The whole body arrived, as announced.
    if let Some(length) = response.header("content-length") {
        anyhow::ensure!(
            length.parse::<usize>()? == response.body.len(),
            "{response:?}"
        );
    }
    Ok(response)
}

/// A scrape: every family's type, and every sample by name and label set.
#[derive(Debug)]
struct Scrape {
    text: String,
    types: HashMap<String, String>,
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
}

impl Scrape {
    /// Parses the text format, failing on any line that is not a comment or a sample.
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut types = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').context("TYPE without a kind")?;
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').with_context(|| line.to_owned())?;
            let value: f64 = value.parse().with_context(|| line.to_owned())?;
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').with_context(|| line.to_owned())?;
                    (name, parse_labels(labels).with_context(|| line.to_owned())?)
                }
                None => (series, BTreeMap::new()),
            };
            anyhow::ensure!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                "bad metric name: {line}"
            );
            let previous = samples.insert((name.to_owned(), labels), value);
            anyhow::ensure!(previous.is_none(), "sample written twice: {line}");
        }
        Ok(Self {
            text: text.to_owned(),
            types,
            samples,
        })
    }

    /// The sample of `name` with exactly `labels`; 0 when the series does not exist
    /// yet (counters start at zero).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether the sample exists.
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples.contains_key(&(name.to_owned(), labels))
    }

    /// The sum of every sample of `name`.
    fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| v)
            .sum()
    }
}

/// `a="x",b="y"` (values with `\\`, `\"` and `\n` escapes).
fn parse_labels(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").context("label without a value")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().context("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().context("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        anyhow::ensure!(
            labels.insert(name.to_owned(), value).is_none(),
            "label {name} twice"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

const REQUESTS: &str = "pdm_rpc_requests_total";
const DURATION_COUNT: &str = "pdm_rpc_duration_seconds_count";
const DECISIONS: &str = "pdm_consent_decisions_total";
const EVENTS: &str = "pdm_telemetry_events_total";
const OPEN: &str = "pdm_rights_requests_open";
const OVERDUE: &str = "pdm_rights_requests_overdue";
const PURGE_RUNS: &str = "pdm_retention_purge_runs_total";

/// The labels of one RPC's counter.
fn rpc<'a>(
    service: &'a str,
    rpc_service: &'a str,
    rpc_method: &'a str,
    code: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("service", service),
        ("rpc_service", rpc_service),
        ("rpc_method", rpc_method),
        ("code", code),
    ]
}

/// How much a series grew from `before` to `after`.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.value(name, labels)
}

const CONSENT: &str = "pdm.consent.v1.ConsentService";
const TELEMETRY: &str = "pdm.telemetry.v1.TelemetryService";
const SUBJECT_DATA: &str = "pdm.subject.v1.SubjectDataService";
const RETENTION: &str = "pdm.retention.v1.RetentionService";

async fn mesh(clock: &std::sync::Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_transfers::Transfers)
        .with(pdm_rights::Rights)
        .with(pdm_retention::Retention)
        .with(pdm_incidents::Incidents)
        .clock(clock.clone())
        // Purge runs only when the test asks.
        .setting("retention.purge_interval_minutes", 0)
        .start()
        .await
}

fn usage_event(subject: &str, at: chrono::DateTime<Utc>) -> telemetry::Event {
    telemetry::Event {
        subject_id: subject.to_owned(),
        kind: EventKind::FeatureUsed as i32,
        occurred_at: Some(timestamp(at)),
        feature: "export".into(),
        device: Some(telemetry::DeviceContext {
            os_name: "Linux".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn scraped_metrics_count_calls_decisions_events_requests_and_purge_runs() -> anyhow::Result<()>
{
    let endpoint = Endpoint::start().await?;
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .context("date")?,
    );
    let mesh = mesh(&clock).await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;

    // --- consent: a decision, then a refused call
    let before = endpoint.scrape().await?;
    let decision = mesh
        .consent()
        .check_processing(CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .context("no decision")?;
    assert!(!decision.allowed);
    assert_eq!(decision.reason, Reason::NoConsent as i32);
    let after = endpoint.scrape().await?;
    let check_ok = rpc("consent", CONSENT, "CheckProcessing", "OK");
    assert_eq!(delta(&before, &after, REQUESTS, &check_ok), 1.0);
    assert_eq!(
        delta(
            &before,
            &after,
            DECISIONS,
            &[("outcome", "denied"), ("reason", "no_consent")]
        ),
        1.0,
        "{}",
        after.text
    );
    let check_method = [
        ("service", "consent"),
        ("rpc_service", CONSENT),
        ("rpc_method", "CheckProcessing"),
    ];
    assert_eq!(delta(&before, &after, DURATION_COUNT, &check_method), 1.0);

    let before = after;
    let err = mesh
        .consent()
        .check_processing(CheckProcessingRequest {
            subject_id: "not-a-subject-id".into(),
            purpose: "product_analytics".into(),
            ..Default::default()
        })
        .await
        .expect_err("a malformed subject id is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    let after = endpoint.scrape().await?;
    assert_eq!(
        delta(
            &before,
            &after,
            REQUESTS,
            &rpc("consent", CONSENT, "CheckProcessing", "INVALID_ARGUMENT")
        ),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(delta(&before, &after, REQUESTS, &check_ok), 0.0);
    assert_eq!(
        after.total(DECISIONS) - before.total(DECISIONS),
        0.0,
        "a refused call decides nothing"
    );
    // Its duration is measured too, and the histogram is whole: +Inf is the count.
    assert_eq!(delta(&before, &after, DURATION_COUNT, &check_method), 1.0);
    let mut inf = check_method.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        after.value("pdm_rpc_duration_seconds_bucket", &inf),
        after.value(DURATION_COUNT, &check_method)
    );

    // --- a call the authorisation layer refuses is counted with its method
    let before = after;
    let err = SubjectDataServiceClient::new(
        mesh.channel_as("identity", &Caller::Client("billing".to_owned()))?,
    )
    .erase_subject(EraseSubjectRequest {
        request_id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
        subject_id: subject.clone(),
    })
    .await
    .expect_err("only rights may erase");
    assert_eq!(err.code(), Code::PermissionDenied);
    let after = endpoint.scrape().await?;
    assert_eq!(
        delta(
            &before,
            &after,
            REQUESTS,
            &rpc(
                "identity",
                SUBJECT_DATA,
                "EraseSubject",
                "PERMISSION_DENIED"
            )
        ),
        1.0,
        "{}",
        after.text
    );

    // --- telemetry: accepted, dropped, duplicate and refused events
    let before = after;
    let at = clock.now();
    let batch = telemetry::IngestEventsRequest {
        batch_id: "metrics-batch-1".into(),
        events: vec![
            usage_event(&subject, at),
            usage_event(&subject, at),
            // Anonymous and strictly necessary: no choice needed ("Cookies and Other
            // Tracking Tools": analytics without a visitor's choice would be dropped).
            telemetry::Event {
                tracking: telemetry::TrackingCategory::StrictlyNecessary as i32,
                ..usage_event("", at)
            },
        ],
    };
    let answer = mesh
        .telemetry()
        .ingest_events(batch.clone())
        .await?
        .into_inner();
    assert_eq!(answer.accepted, 1, "{answer:?}");
    assert_eq!(
        answer.dropped,
        [telemetry::DropCount {
            reason: DropReason::NoConsent as i32,
            count: 2
        }]
    );
    let after = endpoint.scrape().await?;
    let accepted = [("result", "accepted"), ("reason", "none")];
    let no_consent = [("result", "dropped"), ("reason", "no_consent")];
    assert_eq!(
        delta(&before, &after, EVENTS, &accepted),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(delta(&before, &after, EVENTS, &no_consent), 2.0);
    assert_eq!(
        delta(
            &before,
            &after,
            REQUESTS,
            &rpc("telemetry", TELEMETRY, "IngestEvents", "OK")
        ),
        1.0
    );

    let before = after;
    let again = mesh
        .telemetry()
        .ingest_events(batch.clone())
        .await?
        .into_inner();
    assert!(again.duplicate);
    let invalid = mesh
        .telemetry()
        .ingest_events(telemetry::IngestEventsRequest {
            batch_id: String::new(),
            events: batch.events[..2].to_vec(),
        })
        .await
        .expect_err("a batch needs an id");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let after = endpoint.scrape().await?;
    assert_eq!(
        delta(
            &before,
            &after,
            EVENTS,
            &[("result", "duplicate"), ("reason", "same_batch_id")]
        ),
        3.0,
        "{}",
        after.text
    );
    assert_eq!(
        delta(
            &before,
            &after,
            EVENTS,
            &[("result", "rejected"), ("reason", "invalid")]
        ),
        2.0
    );
    assert_eq!(
        delta(&before, &after, EVENTS, &accepted),
        0.0,
        "a duplicate stores nothing again"
    );
    assert_eq!(delta(&before, &after, EVENTS, &no_consent), 0.0);
    assert_eq!(
        delta(
            &before,
            &after,
            REQUESTS,
            &rpc("telemetry", TELEMETRY, "IngestEvents", "INVALID_ARGUMENT")
        ),
        1.0
    );

    // --- rights: the queue, read from the database at each scrape
    assert_eq!(
        (after.value(OPEN, &[]), after.value(OVERDUE, &[])),
        (0.0, 0.0)
    );
    assert!(after.has(OPEN, &[]) && after.has(OVERDUE, &[]));
    let request = mesh
        .rights()
        .submit_request(SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            client_reference: "metrics-1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .context("no request")?;
    assert_eq!(request.status, RequestStatus::VerificationRequired as i32);
    let after = endpoint.scrape().await?;
    assert_eq!(
        (after.value(OPEN, &[]), after.value(OVERDUE, &[])),
        (1.0, 0.0),
        "{}",
        after.text
    );
    // Two months on, the one-month GDPR deadline has passed.
    clock.advance(chrono::Duration::days(62));
    let after = endpoint.scrape().await?;
    assert_eq!(
        (after.value(OPEN, &[]), after.value(OVERDUE, &[])),
        (1.0, 1.0),
        "{}",
        after.text
    );

    // --- retention: a purge run, and the calls it makes to every service
    let before = after;
    let mut stream = mesh
        .retention()
        .run_purge(RunPurgeRequest {
            dry_run: false,
            triggered_by: "metrics-test".into(),
        })
        .await?
        .into_inner();
    let mut last = None;
    while let Some(message) = stream.message().await? {
        last = message.run;
    }
    let run = last.context("the stream ended without the run")?;
    assert_eq!(run.status, RunStatus::Completed as i32, "{run:?}");
    let after = endpoint.scrape().await?;
    assert_eq!(
        delta(&before, &after, PURGE_RUNS, &[("status", "ok")]),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.total(PURGE_RUNS) - before.total(PURGE_RUNS),
        1.0,
        "one run, counted once"
    );
    assert_eq!(
        delta(
            &before,
            &after,
            REQUESTS,
            &rpc("retention", RETENTION, "RunPurge", "OK")
        ),
        1.0,
        "a server stream is counted when it ends"
    );
    for service in ["identity", "consent", "telemetry", "transfers"] {
        assert_eq!(
            delta(
                &before,
                &after,
                REQUESTS,
                &rpc(service, SUBJECT_DATA, "PurgeExpired", "OK")
            ),
            1.0,
            "{service}: {}",
            after.text
        );
    }

    // --- every series the dashboard reads, with its type; no personal data
    for (name, kind) in [
        (REQUESTS, "counter"),
        ("pdm_rpc_duration_seconds", "histogram"),
        (DECISIONS, "counter"),
        (EVENTS, "counter"),
        (OPEN, "gauge"),
        (OVERDUE, "gauge"),
        (PURGE_RUNS, "counter"),
    ] {
        assert_eq!(
            after.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }
    for secret in [
        subject.as_str(),
        person.email.as_str(),
        person.first_name.as_str(),
        person.last_name.as_str(),
        person.phone.as_str(),
    ] {
        assert!(!after.text.contains(secret), "{secret} in the metrics");
    }
    Ok(())
}

#[tokio::test]
async fn the_endpoint_answers_get_metrics_only() -> anyhow::Result<()> {
    let endpoint = Endpoint::start().await?;
    let scrape = endpoint.scrape().await?;
    assert_eq!(
        scrape.types.get(REQUESTS).map(String::as_str),
        Some("counter")
    );
    let other = get(endpoint.addr, "GET", "/").await?;
    assert_eq!(other.status, 404, "{other:?}");
    let post = get(endpoint.addr, "POST", "/metrics").await?;
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow"), Some("GET"));

    // Stopped, it refuses connections.
    let addr = endpoint.addr;
    drop(endpoint);
    let refused = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still listening after the stop");
    Ok(())
}

/// Every series the Grafana dashboard reads is declared once the services start, before
/// any of them counted anything: each service registers the families it owns (the
/// metrics crate names none).
#[tokio::test]
async fn every_dashboard_series_is_declared_by_the_services_that_own_it() -> anyhow::Result<()> {
    let endpoint = Endpoint::start().await?;
    let clock = ManualClock::new(Utc::now());
    let _mesh = mesh(&clock).await?;
    let text = endpoint.scrape().await?.text;
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/dashboards/pdm.json"),
    )?;
    let mut names: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .filter(|word| word.starts_with("pdm_") && !word.ends_with('_'))
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 7, "{names:?}");
    names.push("pdm_background_job_failures_total");
    for name in names {
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name} is not declared once: {text}"
        );
    }
    Ok(())
}
