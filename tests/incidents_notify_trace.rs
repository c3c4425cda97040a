//! A notification run is one trace across the services it touched (issue 21: "the OTLP
//! trace of a notification run spans the services it touched"): `NotifyPeople` at the
//! incidents service, `SendNotice` at rights for each person, and identity's `GetAccount`
//! for each address, all under the operator's call, checked with a real OTLP/gRPC
//! receiver in the process (as tests/otlp_trace.rs does). Nothing the people are told, and
//! no address, is in any span.
//!
//! The process's global subscriber exports to the collector, so this file is a test
//! binary of its own with one test.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind},
};
use pdm_identity::Identity;
use pdm_incidents::Incidents;
use pdm_proto::incidents::v1::{
    self as pb, Nature, RiskLevel, incidents_service_client::IncidentsServiceClient,
};
use pdm_rights::Rights;
use pdm_runtime::{client::channel_with, convert::timestamp, telemetry::TelemetryGuard};
use pdm_testkit::{TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const LIMIT: Duration = Duration::from_secs(60);
const WHAT: &str = "A file with your name and email address went to the wrong partner.";

/// A minimal OTLP/gRPC collector: keeps every span exported to it.
#[derive(Debug, Default, Clone)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource_spans in request.into_inner().resource_spans {
            for scope_spans in resource_spans.scope_spans {
                received.extend(scope_spans.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    async fn start(&self) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok(format!("http://{addr}"))
    }

    /// The spans of `trace`, flushing the exporter until `complete` holds (or `LIMIT`).
    async fn trace(
        &self,
        telemetry: &Arc<TelemetryGuard>,
        trace: TraceId,
        complete: impl Fn(&[Span]) -> bool,
    ) -> anyhow::Result<Vec<Span>> {
        let id = trace.to_string();
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let guard = telemetry.clone();
            tokio::task::spawn_blocking(move || guard.flush()).await??;
            let spans: Vec<Span> = self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|s| hex(&s.trace_id) == id)
                .cloned()
                .collect();
            if complete(&spans) || tokio::time::Instant::now() >= deadline {
                return Ok(spans);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

fn servers<'a>(spans: &'a [Span], name: &'a str) -> impl Iterator<Item = &'a Span> + 'a {
    spans
        .iter()
        .filter(move |s| s.name == name && s.kind == SpanKind::Server as i32)
}

/// The services whose servers have spans in the trace.
fn services(spans: &[Span]) -> BTreeSet<String> {
    spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .filter_map(|s| string(s, "pdm.service"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_run_is_one_trace_across_incidents_rights_and_identity() -> anyhow::Result<()>
{
    let collector = Collector::default();
    let endpoint = collector.start().await?;
    let (logs, telemetry) = pdm_testkit::export_spans(&endpoint)?;
    let telemetry = Arc::new(telemetry);
    assert!(telemetry.exporting());

    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Rights)
        .with(Incidents)
        .setting("rights.retention", "false")
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        .start()
        .await?;
    let people: Vec<Person> = (0..2).map(|_| Person::new()).collect();
    for person in &people {
        mesh.sign_up(person).await?;
    }

    let addr = mesh.addr("incidents").context("incidents not running")?;
    let mut client = IncidentsServiceClient::new(channel_with(
        &format!("http://{addr}"),
        LIMIT,
        mesh.client_tls(&Caller::Admin)?,
    )?);
    let now = chrono::Utc::now();
    let incident = client
        .open_incident(pb::OpenIncidentRequest {
            details: Some(pb::IncidentDetails {
                title: "Partner export sent to the wrong recipient".into(),
                detected_at: Some(timestamp(now - chrono::Duration::hours(1))),
                aware_at: Some(timestamp(now - chrono::Duration::minutes(30))),
                description: "An export went to the wrong partner.".into(),
                natures: vec![Nature::Confidentiality as i32],
                data_categories: vec!["account.profile".into()],
                services: vec!["identity".into()],
                window_start: Some(timestamp(now - chrono::Duration::days(1))),
                likely_consequences: "Phishing emails.".into(),
                measures_taken: "The partner deleted the file.".into(),
                risk: RiskLevel::High as i32,
                risk_reasoning: "Names and emails of many people.".into(),
                regimes: vec!["gdpr".into()],
                ..Default::default()
            }),
            actor: "dpo-office".into(),
        })
        .await?
        .into_inner()
        .incident
        .context("no incident")?;
    let id = incident.incident_id;
    let found = client
        .find_affected(pb::FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(found.affected, 2, "{found:?}");

    // The run, from a span of the test's own: the root of its trace.
    let run_span = tracing::info_span!("test", otel.name = "test: notify people");
    let run_trace = run_span.context().span().span_context().trace_id();
    let answer = client
        .notify_people(pb::NotifyPeopleRequest {
            incident_id: id,
            what_happened: WHAT.into(),
            actor: "dpo-office".into(),
            max_subjects: 0,
        })
        .instrument(run_span)
        .await?
        .into_inner();
    assert_eq!((answer.notified, answer.remaining), (2, 0), "{answer:?}");

    let expected: BTreeSet<String> = ["identity", "incidents", "rights"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let spans = collector
        .trace(&telemetry, run_trace, |spans| {
            services(spans) == expected
                && servers(spans, "pdm.rights.v1.RightsService/SendNotice").count() == 2
                && spans.iter().any(|s| s.name == "test: notify people")
        })
        .await?;
    let describe = || {
        spans
            .iter()
            .map(|s| {
                format!(
                    "{} kind={} service={:?}",
                    s.name,
                    s.kind,
                    string(s, "pdm.service")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(services(&spans), expected, "{}", describe());
    assert_eq!(
        servers(&spans, "pdm.incidents.v1.IncidentsService/NotifyPeople").count(),
        1,
        "{}",
        describe()
    );
    assert_eq!(
        servers(&spans, "pdm.rights.v1.RightsService/SendNotice").count(),
        2,
        "{}",
        describe()
    );
    assert!(
        servers(&spans, "pdm.identity.v1.IdentityService/GetAccount").count() >= 2,
        "{}",
        describe()
    );
    // One root (the test's span); every other span's parent is in the trace.
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "{}", describe());
    assert_eq!(roots[0].name, "test: notify people");
    for span in &spans {
        if !span.parent_span_id.is_empty() {
            assert!(
                spans.iter().any(|p| p.span_id == span.parent_span_id),
                "the parent of {} is not in the trace:\n{}",
                span.name,
                describe()
            );
        }
    }
    // What the people are told, and their addresses, are in no span and no log.
    let dump = format!("{spans:?}");
    let log = logs.contents();
    for secret in std::iter::once(WHAT).chain(people.iter().map(|p| p.email.as_str())) {
        assert!(!dump.contains(secret), "{secret} in a span");
        assert!(!log.contains(secret), "{secret} logged");
    }
    Ok(())
}
