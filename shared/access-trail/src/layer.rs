//! Turns answers marked with [`crate::Accessed`] into trail entries, with the caller the
//! authorisation layer found and the call's trace id.

use std::{
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{AccessEntry, Accessed, Trail};
use pdm_tls::identity::{Actor, Caller};

use pdm_core::clock::SharedClock;

/// A boxed future, as tower services return.
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Adds [`Audit`] to a service. The trail is filled in once the database is ready.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    trail: Arc<OnceLock<Trail>>,
    clock: SharedClock,
}

impl AuditLayer {
    /// Records into `trail` (once set), timed by `clock`.
    pub fn new(trail: Arc<OnceLock<Trail>>, clock: SharedClock) -> Self {
        Self { trail, clock }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            trail: self.trail.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// Records the accesses its service's answers report.
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    trail: Arc<OnceLock<Trail>>,
    clock: SharedClock,
}

impl<S, B, R> Service<http::Request<B>> for Audit<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The handler may need the trail itself (its retention rule in PurgeExpired).
        if let Some(trail) = self.trail.get() {
            request.extensions_mut().insert(trail.clone());
        }
        // An operator acting through the web front is recorded by name
        // (`web/operator:<name>`), else the caller the certificate names.
        let caller = match request.extensions().get::<Actor>() {
            Some(actor) => Some(actor.to_string()),
            None => request
                .extensions()
                .get::<Caller>()
                .map(ToString::to_string),
        };
        let method = request.uri().path().to_owned();
        let trail = self.trail.clone();
        let clock = self.clock.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            if let Some(accessed) = response.extensions().get::<Accessed>()
                && let Some(trail) = trail.get()
            {
                let trace_id = tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .trace_id();
                let trace_id = if trace_id == opentelemetry::trace::TraceId::INVALID {
                    String::new()
                } else {
                    trace_id.to_string()
                };
                let caller = caller.unwrap_or_else(|| "anonymous".to_owned());
                let at = clock.now();
                for subject_id in &accessed.subjects {
                    trail
                        .record(AccessEntry {
                            at,
                            caller: caller.clone(),
                            method: method.clone(),
                            subject_id: subject_id.clone(),
                            purpose: accessed.purpose.clone(),
                            trace_id: trace_id.clone(),
                        })
                        .await;
                }
            }
            Ok(response)
        })
    }
}
