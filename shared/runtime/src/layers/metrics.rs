//! Counts every call and its duration, by server, gRPC service, method and status code
//! (`pdm_rpc_requests_total`, `pdm_rpc_duration_seconds`). Placed just inside
//! [`super::trace`], it sees every call, refusals by the layers below it included
//! (`PERMISSION_DENIED`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`).
//!
//! A call ends with its status: in the response headers for a trailers-only answer,
//! otherwise in the trailers at the end of the body, so a stream is measured to its end.
//! A call dropped before either (the caller reset it) counts as `CANCELLED`.
//!
//! The method labels come from the protos this binary knows, never from the request as
//! sent: an unknown path counts as `unknown`, so callers cannot create series at will.

use std::{
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll, ready},
    time::Instant,
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;
use tower::{Layer, Service};

use super::{
    BoxFuture,
    grpc_status::{code_name, code_of},
    methods,
};
use pdm_metrics::{Counter, Family, Histogram};

/// The label of a path that is no method of our protos.
pub const UNKNOWN: &str = "unknown";

/// `pdm_rpc_requests_total`: calls answered, by server, method and status code.
static REQUESTS: LazyLock<Family<4, Counter>> = LazyLock::new(|| {
    Family::new(
        "pdm_rpc_requests_total",
        "gRPC calls answered, by server, method and status code.",
        ["service", "rpc_service", "rpc_method", "code"],
    )
});

/// `pdm_rpc_duration_seconds`: call durations until their status, by server and method.
static DURATION: LazyLock<Family<3, Histogram>> = LazyLock::new(|| {
    Family::new(
        "pdm_rpc_duration_seconds",
        "Duration of gRPC calls until their status, by server and method.",
        ["service", "rpc_service", "rpc_method"],
    )
});

/// Records one call.
fn rpc_call(
    service: &'static str,
    rpc_service: &'static str,
    rpc_method: &'static str,
    code: &'static str,
    seconds: f64,
) {
    REQUESTS.with([service, rpc_service, rpc_method, code], |c| c.add(1));
    DURATION.with([service, rpc_service, rpc_method], |h| h.observe(seconds));
}

/// Adds [`Metrics`] to a service.
#[derive(Debug, Clone, Copy)]
pub struct MetricsLayer {
    service: &'static str,
}

impl MetricsLayer {
    /// Counts the calls of the server named `service` (the `service` label).
    pub fn new(service: &'static str) -> Self {
        methods::load();
        pdm_metrics::register_all(&[&*REQUESTS, &*DURATION]);
        Self { service }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics {
            inner,
            service: self.service,
        }
    }
}

/// Records each call's count and duration when it ends.
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, R> Service<http::Request<B>> for Metrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Body + Send + 'static,
{
    type Response = http::Response<MetricsBody<R>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (rpc_service, rpc_method) = method_labels(request.uri().path());
        let call = Call {
            service: self.service,
            rpc_service,
            rpc_method,
            started: Instant::now(),
            finished: false,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    let call = match code_of(response.headers()) {
                        Some(code) => {
                            call.finish(code);
                            None
                        }
                        None => Some(call),
                    };
                    Ok(response.map(|inner| MetricsBody { inner, call }))
                }
                Err(err) => {
                    call.finish(Code::Internal);
                    Err(err)
                }
            }
        })
    }
}

pin_project! {
    /// A response body that ends its call when the trailers (with the status) go out.
    pub struct MetricsBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let code = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| code_of(trailers).unwrap_or(Code::Unknown)),
            Some(Err(_)) => Some(Code::Internal),
            // A body that ends without a status: gRPC clients read it as UNKNOWN.
            None => Some(Code::Unknown),
        };
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A call being measured. Dropped unfinished, it counts as `CANCELLED`.
struct Call {
    service: &'static str,
    rpc_service: &'static str,
    rpc_method: &'static str,
    started: Instant,
    finished: bool,
}

impl Call {
    fn finish(mut self, code: Code) {
        self.finished = true;
        self.record(code);
    }

    fn record(&self, code: Code) {
        rpc_call(
            self.service,
            self.rpc_service,
            self.rpc_method,
            code_name(code),
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            self.record(Code::Cancelled);
        }
    }
}

/// The `rpc_service` and `rpc_method` labels of a request path.
fn method_labels(path: &str) -> (&'static str, &'static str) {
    methods::find(path).map_or((UNKNOWN, UNKNOWN), |m| {
        (m.service.as_str(), m.method.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_our_protos_are_labelled_and_others_are_unknown() {
        assert_eq!(
            method_labels("/pdm.consent.v1.ConsentService/CheckProcessing"),
            ("pdm.consent.v1.ConsentService", "CheckProcessing")
        );
        assert_eq!(
            method_labels("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method_labels("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            (
                "grpc.reflection.v1.ServerReflection",
                "ServerReflectionInfo"
            )
        );
        assert_eq!(
            method_labels("/pdm.audit.v1.AuditService/ListAccesses"),
            ("pdm.audit.v1.AuditService", "ListAccesses")
        );
        assert_eq!(
            method_labels("/pdm.consent.v1.ConsentService/NoSuchMethod"),
            (UNKNOWN, UNKNOWN)
        );
        assert_eq!(method_labels("/"), (UNKNOWN, UNKNOWN));
    }
}
