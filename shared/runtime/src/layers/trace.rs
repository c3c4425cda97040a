//! A server span per call, following the OpenTelemetry RPC conventions (`rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), and one log line per call.
//! `pdm.service` names the pdm service that answered: every data-holding service serves
//! `pdm.subject.v1.SubjectDataService`, and one process may run them all.
//! Nothing from the request body is recorded: spans and logs carry no personal data.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::trace::TraceContextExt;
use tonic::Code;
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{BoxFuture, methods};
use crate::{propagation, sampled::Sampler};

/// Adds [`Trace`] to a service.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    service: &'static str,
    sampler: Arc<Sampler>,
}

impl TraceLayer {
    /// Spans of the calls `service` (`identity`, `consent`…) answers.
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            sampler: Arc::new(Sampler::new()),
        }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            service: self.service,
            sampler: self.sampler.clone(),
        }
    }
}

/// Wraps each call in a span whose parent is the caller's trace context.
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
    service: &'static str,
    sampler: Arc<Sampler>,
}

impl<S, B, R> Service<http::Request<B>> for Trace<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let full_method = path.trim_start_matches('/');
        let (service, method) = full_method.split_once('/').unwrap_or((full_method, ""));
        let span = tracing::info_span!(
            "rpc",
            otel.name = full_method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            otel.status_code = Empty,
            pdm.service = self.service,
            trace_id = Empty,
        );
        // The parent must be set before the span is first entered.
        let _ = span.set_parent(propagation::extract(request.headers()));
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));

        // A method of our protos, never the path as sent (it keys the sampled lines).
        let label = methods::find(path).map_or("unknown", |m| m.method.as_str());
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let sampler = self.sampler.clone();
        let abandoned = Abandoned {
            started,
            span: span.clone(),
            finished: false,
            label,
            sampler: sampler.clone(),
        };
        Box::pin(
            async move {
                let result = future.await;
                abandoned.finish();
                let code = match &result {
                    Ok(response) => tonic::Status::from_header_map(response.headers())
                        .map_or(Code::Ok, |s| s.code()),
                    Err(_) => Code::Internal,
                };
                record_completion(code, started, label, &sampler);
                result
            }
            .instrument(span),
        )
    }
}

/// Logs a call dropped before it finished (the caller reset it, or a timer outside this
/// layer cut it): every call still gets its line.
struct Abandoned {
    started: Instant,
    span: tracing::Span,
    finished: bool,
    label: &'static str,
    sampler: Arc<Sampler>,
}

impl Abandoned {
    /// The call finished: nothing to log on drop. (Taking `self` moves the whole guard
    /// into the call's future; a field assignment would capture only the field.)
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _entered = self.span.enter();
        record_completion(Code::Cancelled, self.started, self.label, &self.sampler);
    }
}

fn record_completion(code: Code, started: Instant, method: &str, sampler: &Sampler) {
    let span = tracing::Span::current();
    span.record("rpc.grpc.status_code", code as i32);
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let code_name = format!("{code:?}");
    match code {
        Code::Ok => tracing::debug!(code = %code_name, elapsed_us, "call finished"),
        Code::Internal
        | Code::Unknown
        | Code::Unavailable
        | Code::DataLoss
        | Code::Unimplemented
        | Code::DeadlineExceeded => {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(code = %code_name, elapsed_us, "call failed");
        }
        Code::Cancelled => tracing::info!(code = %code_name, elapsed_us, "call cancelled"),
        // The refusals of the layers (policy, rate limit, load shedding) come in floods:
        // sampled, the exact counts are in the metrics.
        Code::PermissionDenied | Code::ResourceExhausted | Code::Unauthenticated => {
            if let Some(left_out) = sampler.refusal(&format!("call {code_name} {method}")) {
                tracing::info!(code = %code_name, elapsed_us, left_out, "call refused");
            }
        }
        _ => tracing::info!(code = %code_name, elapsed_us, "call refused"),
    }
}
