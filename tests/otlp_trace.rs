//! One data-subject request is one trace (issue 9, DESIGN: "every client call propagates
//! W3C trace context, so one DSR is one trace across all services"), checked with a real
//! OTLP/gRPC receiver: an in-process collector (opentelemetry-proto's `TraceService`)
//! receives the spans the mesh exports as `pdm serve` would, and the test reads them back.
//!
//! The process's global subscriber is installed once, exporting to the collector, so this
//! file is a test binary of its own with one test; every span of the process reaches the
//! collector, and each check picks its trace by id.

use std::{
    collections::{BTreeMap, BTreeSet},
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
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    retention::v1::{RunPurgeRequest, retention_service_client::RetentionServiceClient},
    rights::v1::{
        self as rights_pb, Credential, RequestKind, credential,
        rights_service_client::RightsServiceClient,
    },
};
use pdm_retention::Retention;
use pdm_rights::Rights;
use pdm_runtime::{
    client::{TracedChannel, channel_with},
    telemetry::TelemetryGuard,
};
use pdm_telemetry::Telemetry;
use pdm_testkit::{Mesh, TEST_CLIENT, TestMesh};
use pdm_tls::identity::Caller;
use pdm_transfers::Transfers;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Longest wait for a request to close, or for spans to arrive.
const LIMIT: Duration = Duration::from_secs(60);

/// The services of the mesh, as server spans name them (`pdm.service`).
const SERVICES: [&str; 6] = [
    "consent",
    "identity",
    "retention",
    "rights",
    "telemetry",
    "transfers",
];

/// The services holding personal data: erased by the request, purged by a run.
const DATA_SERVICES: [&str; 4] = ["consent", "identity", "telemetry", "transfers"];

/// The services an erasure has a task for: every data-holding service, and retention
/// (the account closure).
fn erased_and_closed() -> BTreeSet<String> {
    DATA_SERVICES
        .iter()
        .chain(&["retention"])
        .map(|s| (*s).to_owned())
        .collect()
}

// === the collector ===

/// A span as received, with the attributes of the resource that exported it.
#[derive(Debug, Clone)]
struct Received {
    resource: Vec<KeyValue>,
    span: Span,
}

/// A minimal OTLP/gRPC collector: keeps every span exported to it.
#[derive(Debug, Default, Clone)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                received.extend(scope_spans.spans.into_iter().map(|span| Received {
                    resource: resource.clone(),
                    span,
                }));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves the collector on an ephemeral port and returns its endpoint.
    async fn start(&self) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok(format!("http://{addr}"))
    }

    fn spans(&self) -> Vec<Received> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Flushes the exporter until `complete` holds for what arrived (or `LIMIT` passed),
    /// and returns what arrived.
    async fn collect(
        &self,
        telemetry: &Arc<TelemetryGuard>,
        complete: impl Fn(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            // The batch exporter waits for its queue or its timer; flushing blocks.
            let guard = telemetry.clone();
            tokio::task::spawn_blocking(move || guard.flush()).await??;
            let spans = self.spans();
            if complete(&spans) || tokio::time::Instant::now() >= deadline {
                return Ok(spans);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

// === reading spans ===

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(span: &Span, key: &str) -> Option<String> {
    match attribute(&span.attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(&span.attributes, key)? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn is_kind(span: &Span, kind: SpanKind) -> bool {
    span.kind == kind as i32
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every text a span carries: its name, status message, attributes and events.
fn texts(received: &Received) -> Vec<String> {
    fn value_texts(value: &AnyValue, out: &mut Vec<String>) {
        match &value.value {
            Some(Value::StringValue(s)) => out.push(s.clone()),
            Some(Value::ArrayValue(a)) => a.values.iter().for_each(|v| value_texts(v, out)),
            Some(Value::KvlistValue(l)) => l.values.iter().for_each(|kv| {
                out.push(kv.key.clone());
                if let Some(v) = &kv.value {
                    value_texts(v, out);
                }
            }),
            Some(Value::BytesValue(b)) => out.push(String::from_utf8_lossy(b).into_owned()),
            Some(other) => out.push(format!("{other:?}")),
            None => {}
        }
    }
    let span = &received.span;
    let mut out = vec![span.name.clone()];
    if let Some(status) = &span.status {
        out.push(status.message.clone());
    }
    let attributes = span
        .attributes
        .iter()
        .chain(&received.resource)
        .chain(span.events.iter().flat_map(|e| &e.attributes))
        .chain(span.links.iter().flat_map(|l| &l.attributes));
    for kv in attributes {
        out.push(kv.key.clone());
        if let Some(v) = &kv.value {
            value_texts(v, &mut out);
        }
    }
    out.extend(span.events.iter().map(|e| e.name.clone()));
    out
}

/// The spans of one trace, with their links.
struct Trace {
    id: String,
    spans: Vec<Span>,
}

impl Trace {
    fn of(received: &[Received], trace_id: TraceId) -> Self {
        let id = trace_id.to_string();
        Self {
            spans: received
                .iter()
                .filter(|r| hex(&r.span.trace_id) == id)
                .map(|r| r.span.clone())
                .collect(),
            id,
        }
    }

    fn by_id(&self, span_id: &[u8]) -> Option<&Span> {
        self.spans.iter().find(|s| s.span_id == span_id)
    }

    fn parent(&self, span: &Span) -> Option<&Span> {
        self.by_id(&span.parent_span_id)
    }

    fn children<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = &'a Span> + 'a {
        self.spans
            .iter()
            .filter(move |s| s.parent_span_id == span.span_id)
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Span> + 'a {
        self.spans.iter().filter(move |s| s.name == name)
    }

    fn servers(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(|s| is_kind(s, SpanKind::Server))
    }

    /// The services whose servers have spans in this trace.
    fn services(&self) -> BTreeSet<String> {
        self.servers()
            .filter_map(|s| string(s, "pdm.service"))
            .collect()
    }

    fn describe(&self) -> String {
        let mut out = format!("trace {} ({} spans):\n", self.id, self.spans.len());
        for s in &self.spans {
            out.push_str(&format!(
                "  {} {} kind={} parent={} service={:?}\n",
                hex(&s.span_id),
                s.name,
                s.kind,
                hex(&s.parent_span_id),
                string(s, "pdm.service"),
            ));
        }
        out
    }

    /// The links every trace of the mesh must have: one root (`root`, the test's own
    /// span); every other span's parent in the trace; each server span the child of a
    /// client span of the same method, called at the port of the service that answered;
    /// each client span answered by exactly one server span; the RPC attributes on both.
    fn assert_well_formed(&self, root: &str, mesh: &Mesh) {
        let roots: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id.is_empty())
            .collect();
        assert_eq!(roots.len(), 1, "one root: {}", self.describe());
        assert_eq!(roots[0].name, root, "{}", self.describe());
        for span in &self.spans {
            if !span.parent_span_id.is_empty() {
                assert!(
                    self.parent(span).is_some(),
                    "the parent of {} ({}) is not in the trace: {}",
                    span.name,
                    hex(&span.span_id),
                    self.describe()
                );
            }
        }
        for span in self
            .spans
            .iter()
            .filter(|s| is_kind(s, SpanKind::Server) || is_kind(s, SpanKind::Client))
        {
            let service = string(span, "rpc.service").unwrap_or_default();
            let method = string(span, "rpc.method").unwrap_or_default();
            assert_eq!(
                string(span, "rpc.system").as_deref(),
                Some("grpc"),
                "{span:?}"
            );
            assert!(!service.is_empty() && !method.is_empty(), "{span:?}");
            assert_eq!(span.name, format!("{service}/{method}"), "{span:?}");
            let code = int(span, "rpc.grpc.status_code");
            assert!(
                code.is_some_and(|c| (0..=16).contains(&c)),
                "rpc.grpc.status_code of {}: {code:?}",
                span.name
            );
        }
        for server in self.servers() {
            let client = self
                .parent(server)
                .unwrap_or_else(|| panic!("{} has no parent: {}", server.name, self.describe()));
            assert!(
                is_kind(client, SpanKind::Client),
                "the parent of server span {} is {} (kind {}), not a client span",
                server.name,
                client.name,
                client.kind
            );
            assert_eq!(
                client.name, server.name,
                "a call answered by another method"
            );
            let answered_by = string(server, "pdm.service").expect("pdm.service");
            let port = mesh.addr(&answered_by).expect("a running service").port();
            assert_eq!(
                int(client, "server.port"),
                Some(i64::from(port)),
                "{} was called at another port than {answered_by}'s",
                server.name
            );
            assert_eq!(
                int(client, "rpc.grpc.status_code"),
                int(server, "rpc.grpc.status_code"),
                "client and server disagree on the status of {}",
                server.name
            );
        }
        for client in self.spans.iter().filter(|s| is_kind(s, SpanKind::Client)) {
            let answers: Vec<&Span> = self
                .children(client)
                .filter(|s| is_kind(s, SpanKind::Server))
                .collect();
            assert_eq!(
                answers.len(),
                1,
                "client span {} ({}) has {} server children: {}",
                client.name,
                hex(&client.span_id),
                answers.len(),
                self.describe()
            );
        }
    }
}

// === the mesh ===

/// A channel to `service` as the test client, traced as the services' own channels are.
fn traced_channel(mesh: &Mesh, service: &str) -> anyhow::Result<TracedChannel> {
    let addr = mesh
        .addr(service)
        .with_context(|| format!("{service} is not running"))?;
    channel_with(
        &format!("http://{addr}"),
        LIMIT,
        mesh.client_tls(&Caller::Client(TEST_CLIENT.to_owned()))?,
    )
}

/// Watches a request until it closes and returns its last state.
async fn wait_closed(
    mesh: &Mesh,
    request_id: &str,
) -> anyhow::Result<rights_pb::DataSubjectRequest> {
    let mut stream = mesh
        .rights()
        .watch_request(rights_pb::WatchRequestRequest {
            request_id: request_id.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(message))) => last = message.request,
            Ok(Ok(None)) => break,
            Ok(Err(status)) => return Err(status.into()),
            Err(_) => anyhow::bail!("the request did not close in time: {last:?}"),
        }
    }
    last.context("no request state")
}

// === the test ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_request_and_a_purge_run_are_each_one_trace_across_the_mesh()
-> anyhow::Result<()> {
    // Before anything logs: the process's subscriber exports to the collector.
    let collector = Collector::default();
    let endpoint = collector.start().await?;
    let (logs, telemetry) = pdm_testkit::export_spans(&endpoint)?;
    let telemetry = Arc::new(telemetry);
    assert!(telemetry.exporting());

    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Retention)
        .with(Rights)
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        // Only the run this test starts.
        .setting("retention.purge_interval_minutes", 0)
        .start()
        .await?;
    let (person, subject) = mesh.person_with_data().await?;

    // The erasure, submitted over a traced channel from a span of the test's own: the
    // root of the request's trace.
    let request_span = tracing::info_span!("test", otel.name = "test: erasure request");
    let request_trace = request_span.context().span().span_context().trace_id();
    let submitted = RightsServiceClient::new(traced_channel(&mesh, "rights")?)
        .submit_request(rights_pb::SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            regime: rights_pb::Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: Some(Credential {
                credential: Some(credential::Credential::Password(person.password.clone())),
            }),
            ..Default::default()
        })
        .instrument(request_span)
        .await?
        .into_inner()
        .request
        .context("no request")?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status, rights_pb::Status::Completed as i32, "{done:?}");
    let tasks: BTreeSet<&str> = done.tasks.iter().map(|t| t.service.as_str()).collect();
    assert_eq!(
        tasks,
        erased_and_closed().iter().map(String::as_str).collect()
    );

    // An on-demand purge run: its calls are made on a task of the run's own.
    let purge_span = tracing::info_span!("test", otel.name = "test: purge run");
    let purge_trace = purge_span.context().span().span_context().trace_id();
    async {
        let mut progress = RetentionServiceClient::new(traced_channel(&mesh, "retention")?)
            .run_purge(RunPurgeRequest {
                dry_run: true,
                triggered_by: "otlp-trace-test".to_owned(),
            })
            .await?
            .into_inner();
        let mut last = None;
        while let Some(message) = progress.message().await? {
            last = message.run;
        }
        let run = last.context("no run")?;
        anyhow::ensure!(run.services.len() == DATA_SERVICES.len(), "{run:?}");
        anyhow::Ok(())
    }
    .instrument(purge_span)
    .await?;

    // Both test spans have ended; wait until every service's spans of both traces came.
    let expected: BTreeSet<String> = SERVICES.iter().map(|s| (*s).to_owned()).collect();
    let received = collector
        .collect(&telemetry, |received| {
            let request = Trace::of(received, request_trace);
            let purge = Trace::of(received, purge_trace);
            request.services() == expected
                && request.named("test: erasure request").count() == 1
                && purge.named("test: purge run").count() == 1
                && purge.named("retention.purge").count() == 1
                && purge
                    .named("pdm.retention.v1.RetentionService/RunPurge")
                    .count()
                    == 2
                && purge
                    .named("pdm.subject.v1.SubjectDataService/PurgeExpired")
                    .filter(|s| is_kind(s, SpanKind::Server))
                    .count()
                    >= DATA_SERVICES.len()
        })
        .await?;
    assert!(!received.is_empty(), "the collector received nothing");

    // --- the erasure request: one trace
    let request = Trace::of(&received, request_trace);
    assert_eq!(
        request.services(),
        expected,
        "spans from every running service: {}",
        request.describe()
    );
    request.assert_well_formed("test: erasure request", &mesh);
    // Everything the request did, wherever it ran, is in that trace: its fan-out tasks,
    // every erasure and the account closure.
    for r in &received {
        let span = &r.span;
        let ours = string(span, "request_id").as_deref() == Some(submitted.request_id.as_str())
            || span.name == "pdm.subject.v1.SubjectDataService/EraseSubject"
            || span.name == "pdm.rights.v1.RightsService/SubmitRequest";
        if ours {
            assert_eq!(
                hex(&span.trace_id),
                request.id,
                "{} ({}) is not in the request's trace",
                span.name,
                hex(&span.span_id)
            );
        }
    }
    // The submit call: the test's client span, answered by rights.
    let submit: Vec<&Span> = request
        .named("pdm.rights.v1.RightsService/SubmitRequest")
        .filter(|s| is_kind(s, SpanKind::Server))
        .collect();
    assert_eq!(submit.len(), 1, "{}", request.describe());
    let submit = submit[0];
    assert_eq!(string(submit, "pdm.service").as_deref(), Some("rights"));
    assert_eq!(int(submit, "rpc.grpc.status_code"), Some(0));
    // The fan-out tasks continue the submit call, and each calls the service it is for.
    let task_spans: Vec<&Span> = request
        .spans
        .iter()
        .filter(|s| s.name.starts_with("rights.task "))
        .collect();
    let task_services: BTreeSet<String> = task_spans
        .iter()
        .filter_map(|s| string(s, "service"))
        .collect();
    assert_eq!(task_services, erased_and_closed(), "{}", request.describe());
    for task in &task_spans {
        assert_eq!(
            task.parent_span_id,
            submit.span_id,
            "{} does not continue the submit call: {}",
            task.name,
            request.describe()
        );
        let service = string(task, "service").expect("service");
        let answered: BTreeSet<String> = request
            .children(task)
            .filter(|c| is_kind(c, SpanKind::Client))
            .flat_map(|c| request.children(c))
            .filter_map(|s| string(s, "pdm.service"))
            .collect();
        assert_eq!(
            answered,
            BTreeSet::from([service.clone()]),
            "{} called other services",
            task.name
        );
    }
    let erasures: BTreeSet<String> = request
        .named("pdm.subject.v1.SubjectDataService/EraseSubject")
        .filter(|s| is_kind(s, SpanKind::Server))
        .filter_map(|s| string(s, "pdm.service"))
        .collect();
    assert_eq!(
        erasures,
        DATA_SERVICES
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    );

    // --- the purge run: one trace, its calls under the run's span
    let purge = Trace::of(&received, purge_trace);
    purge.assert_well_formed("test: purge run", &mesh);
    let run_purge: Vec<&Span> = purge
        .named("pdm.retention.v1.RetentionService/RunPurge")
        .filter(|s| is_kind(s, SpanKind::Server))
        .collect();
    assert_eq!(run_purge.len(), 1, "{}", purge.describe());
    let runs: Vec<&Span> = purge.named("retention.purge").collect();
    assert_eq!(runs.len(), 1, "{}", purge.describe());
    assert_eq!(runs[0].parent_span_id, run_purge[0].span_id);
    let mut purged = BTreeSet::new();
    for r in &received {
        let span = &r.span;
        if span.name != "pdm.subject.v1.SubjectDataService/PurgeExpired" {
            continue;
        }
        assert_eq!(
            hex(&span.trace_id),
            purge.id,
            "a purge call outside the run's trace: {}",
            purge.describe()
        );
        if is_kind(span, SpanKind::Client) {
            assert_eq!(span.parent_span_id, runs[0].span_id, "{span:?}");
        } else {
            purged.insert(string(span, "pdm.service").unwrap_or_default());
        }
    }
    assert_eq!(
        purged,
        DATA_SERVICES
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    );

    // --- every span: the resource says who sent it; nothing personal anywhere
    let mut resources = BTreeMap::new();
    for r in &received {
        for key in [
            "service.name",
            "service.version",
            "deployment.environment.name",
        ] {
            let value = match attribute(&r.resource, key) {
                Some(Value::StringValue(s)) if !s.is_empty() => s.clone(),
                other => panic!("resource attribute {key}: {other:?}"),
            };
            resources.insert(key, value);
        }
        let texts = texts(r);
        for (kind, secret) in person.secrets() {
            assert!(
                !texts.iter().any(|t| t.contains(secret)),
                "the subject's {kind} is in span {}: {:?}",
                r.span.name,
                r.span
            );
        }
    }
    assert_eq!(resources["service.name"], "pdm");
    assert_eq!(resources["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(resources["deployment.environment.name"], "test");
    logs.assert_clean(&person.secrets());
    Ok(())
}
