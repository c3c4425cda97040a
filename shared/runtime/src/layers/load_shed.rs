//! A bound on calls in flight per server. Past it, calls are answered
//! `RESOURCE_EXHAUSTED` at once: a busy service sheds load instead of queueing requests
//! (and memory) without bound. Health checks are never shed.

use std::{
    future::ready,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::Semaphore;
use tonic::Status;
use tower::{Layer, Service};

use super::{BoxFuture, is_health_check};

/// Adds [`LoadShed`] to a service. Clones share one budget, so the bound is per server,
/// not per connection.
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
}

impl LoadShedLayer {
    /// At most `limit` calls in flight.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// Refuses calls beyond the in-flight budget.
#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B, R> Service<http::Request<B>> for LoadShed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if is_health_check(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let future = self.inner.call(request);
                Box::pin(async move {
                    let result = future.await;
                    drop(permit);
                    result
                })
            }
            Err(_) => Box::pin(ready(Ok(Status::resource_exhausted(
                "server overloaded: too many calls in flight, retry with backoff",
            )
            .into_http()))),
        }
    }
}
