//! W3C trace context across calls (DESIGN: "every client call propagates W3C trace
//! context, so one DSR is one trace across all services"): a caller's trace reaches the
//! server's span, read back from the server's own log lines.

mod support;

use std::time::Duration;

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use pdm_identity::Identity;
use pdm_proto::identity::v1::{GetAccountRequest, identity_service_client::IdentityServiceClient};
use pdm_testkit::{Mesh, TEST_CLIENT, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use support::{call_end_of_trace, lines_of_trace, random_trace_id, traceparent};
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const LIMIT: Duration = Duration::from_secs(10);

/// A span whose OpenTelemetry parent is a remote span of trace `trace_id`, as a service
/// handling a call of that trace would have.
fn span_in_trace(trace_id: &str) -> anyhow::Result<tracing::Span> {
    let parent = SpanContext::new(
        TraceId::from_hex(trace_id)?,
        SpanId::from_hex("00f067aa0ba902b7")?,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let span = tracing::info_span!("caller");
    span.set_parent(Context::new().with_remote_span_context(parent))?;
    Ok(span)
}

fn endpoint(mesh: &Mesh) -> anyhow::Result<String> {
    let addr = mesh
        .addr("identity")
        .ok_or_else(|| anyhow::anyhow!("identity is not running"))?;
    Ok(format!("http://{addr}"))
}

#[tokio::test]
async fn calls_through_the_runtime_client_carry_the_callers_trace() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let channel = pdm_runtime::client::channel_with(
        &endpoint(&mesh)?,
        LIMIT,
        mesh.client_tls(&Caller::Client(TEST_CLIENT.to_owned()))?,
    )?;
    let trace_id = random_trace_id();
    let span = span_in_trace(&trace_id)?;
    // The span really is in that trace before any call is made.
    assert_eq!(
        span.context().span().span_context().trace_id().to_string(),
        trace_id
    );

    let person = Person::new();
    let mut identity = IdentityServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let account = async {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
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
        anyhow::Ok(account)
    }
    .instrument(span)
    .await?;

    // Each call's server span adopted the caller's trace id; its per-call line says so.
    call_end_of_trace(&trace_id, LIMIT).await?;
    let lines = lines_of_trace(&trace_id);
    for method in [
        "grpc.health.v1.Health/Check",
        "pdm.identity.v1.IdentityService/CreateAccount",
        "pdm.identity.v1.IdentityService/GetAccount",
    ] {
        let finished = lines.iter().find(|line| {
            line["span"]["otel.name"] == method && line["fields"]["message"] == "call finished"
        });
        assert!(
            finished.is_some(),
            "no server line of {method} in trace {trace_id}: {lines:?}"
        );
    }
    assert!(!account.subject_id.is_empty());
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_plain_channel_does_not_carry_the_trace() -> anyhow::Result<()> {
    // The control for the test above: without the runtime's interceptor, a call made in
    // the same kind of span starts a trace of its own on the server.
    let mesh = TestMesh::new().with(Identity).start().await?;
    let trace_id = random_trace_id();
    let span = span_in_trace(&trace_id)?;
    let mut health = mesh.health("identity");
    async {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
    }
    .instrument(span)
    .await?;
    // Make sure the server has logged something since, then look for the trace.
    let marker = random_trace_id();
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent(&marker).parse()?);
    mesh.health("identity").check(request).await?;
    call_end_of_trace(&marker, LIMIT).await?;
    assert!(
        lines_of_trace(&trace_id).is_empty(),
        "the trace travelled without the interceptor"
    );
    Ok(())
}

#[tokio::test]
async fn a_hand_written_traceparent_header_is_adopted_by_the_server() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();

    let trace_id = random_trace_id();
    let mut request = Request::new(GetAccountRequest {
        subject_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent(&trace_id).parse()?);
    let err = identity
        .get_account(request)
        .await
        .expect_err("no such account");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let end = call_end_of_trace(&trace_id, LIMIT).await?;
    assert_eq!(
        end["span"]["otel.name"],
        "pdm.identity.v1.IdentityService/GetAccount"
    );
    assert_eq!(end["fields"]["code"], "NotFound", "{end}");
    assert_eq!(end["span"]["rpc.grpc.status_code"], Code::NotFound as i32);
    Ok(())
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_fresh_trace_and_the_call_still_works()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let trace_id = random_trace_id();
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    // Version ff is forbidden by W3C trace context: the header must be ignored.
    request.metadata_mut().insert(
        "traceparent",
        format!("ff-{trace_id}-00f067aa0ba902b7-01").parse()?,
    );
    mesh.health("identity").check(request).await?;

    let marker = random_trace_id();
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent(&marker).parse()?);
    mesh.health("identity").check(request).await?;
    call_end_of_trace(&marker, LIMIT).await?;
    assert!(lines_of_trace(&trace_id).is_empty());
    Ok(())
}
