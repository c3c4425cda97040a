//! A tower layer that lets a request through only when its subject's data may be
//! processed for the layer's purpose (asked of a [`ConsentGate`]).
//!
//! The service's error becomes a `BoxError`; a refused request fails with [`Refused`],
//! which an HTTP service maps to 403 (axum: `HandleErrorLayer`).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tower::{BoxError, Layer, Service};

use crate::gate::{ConsentGate, Verdict};

/// Why a request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    /// The request names no subject.
    #[error("the request names no subject")]
    NoSubject,
    /// The gate said no.
    #[error("processing not allowed for this purpose: {0:?}")]
    NotAllowed(Verdict),
}

/// Finds the subject a request is about.
type SubjectOf<R> = Arc<dyn Fn(&R) -> Option<String> + Send + Sync>;

/// Adds [`ConsentCheck`] to a service.
pub struct ConsentLayer<R> {
    gate: ConsentGate,
    purpose: Arc<str>,
    subject_of: SubjectOf<R>,
}

impl<R> Clone for ConsentLayer<R> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            purpose: self.purpose.clone(),
            subject_of: self.subject_of.clone(),
        }
    }
}

impl<R> std::fmt::Debug for ConsentLayer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentLayer")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl<R> ConsentLayer<R> {
    /// Requests pass when the subject `subject_of` finds in them may be processed for
    /// `purpose`.
    pub fn new(
        gate: ConsentGate,
        purpose: &str,
        subject_of: impl Fn(&R) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            gate,
            purpose: purpose.into(),
            subject_of: Arc::new(subject_of),
        }
    }
}

impl<S, R> Layer<S> for ConsentLayer<R> {
    type Service = ConsentCheck<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ConsentCheck {
            inner,
            layer: self.clone(),
        }
    }
}

/// Asks the gate before calling the inner service.
pub struct ConsentCheck<S, R> {
    inner: S,
    layer: ConsentLayer<R>,
}

impl<S: Clone, R> Clone for ConsentCheck<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, R> std::fmt::Debug for ConsentCheck<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentCheck")
            .field("purpose", &self.layer.purpose)
            .finish_non_exhaustive()
    }
}

impl<S, R> Service<R> for ConsentCheck<S, R>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The service polled ready is the one that serves the request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let subject = (self.layer.subject_of)(&request);
        let gate = self.layer.gate.clone();
        let purpose = self.layer.purpose.clone();
        Box::pin(async move {
            let subject = subject.ok_or(Refused::NoSubject)?;
            let verdict = gate.allowed(&subject, &purpose).await;
            if !verdict.allowed() {
                return Err(Refused::NotAllowed(verdict).into());
            }
            inner.call(request).await.map_err(Into::into)
        })
    }
}
