//! A panic inside a handler becomes `INTERNAL` with an error id, logged with the id, the
//! method and the place in the code (never the request, nor a formatted panic message).
//! Without it the task serving the call dies: the caller sees the stream reset
//! (`CANCELLED`), with no status and nothing to quote to us.
//!
//! Panics are caught when the handler is called, while its future runs, and while a
//! streamed answer is produced: a stream that panics ends with `INTERNAL` trailers. The
//! connection, the service and the next call carry on.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;
use tower::{Layer, Service};

use super::{BoxFuture, methods};
use crate::panic::{self, PanicReport};

/// Adds [`CatchPanic`] to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// Answers `INTERNAL` for a call whose handler panicked.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for CatchPanic<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Body + Default + Send + 'static,
{
    type Response = http::Response<CatchPanicBody<R>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_name(request.uri().path());
        let future = match panic::catch(|| self.inner.call(request)) {
            Ok(future) => future,
            Err(report) => {
                return Box::pin(std::future::ready(Ok(answer(method, &report))));
            }
        };
        Box::pin(async move {
            let mut future = Box::pin(future);
            let polled =
                std::future::poll_fn(|cx| match panic::catch(|| future.as_mut().poll(cx)) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                    Err(report) => Poll::Ready(Err(report)),
                })
                .await;
            match polled {
                Ok(Ok(response)) => Ok(response.map(|inner| CatchPanicBody {
                    inner,
                    method,
                    done: false,
                })),
                Ok(Err(err)) => Err(err),
                Err(report) => Ok(answer(method, &report)),
            }
        })
    }
}

/// The method's name for the log: one of our protos', never the path as sent.
fn method_name(path: &str) -> &'static str {
    methods::find(path).map_or("unknown", |m| m.method.as_str())
}

/// Logs the panic under a new error id and returns the status to answer with.
fn report(method: &'static str, report: &PanicReport) -> Status {
    let error_id = uuid::Uuid::now_v7();
    tracing::error!(
        %error_id,
        method,
        location = %report.location,
        message = report.message,
        "handler panicked"
    );
    Status::internal(format!("internal error (id {error_id})"))
}

fn answer<R: Body + Default>(
    method: &'static str,
    panic: &PanicReport,
) -> http::Response<CatchPanicBody<R>> {
    report(method, panic)
        .into_http::<R>()
        .map(|inner| CatchPanicBody {
            inner,
            method,
            done: false,
        })
}

pin_project! {
    /// A response body that ends with `INTERNAL` trailers if producing it panics.
    pub struct CatchPanicBody<B> {
        #[pin]
        inner: B,
        method: &'static str,
        done: bool,
    }
}

impl<B: Default> Default for CatchPanicBody<B> {
    fn default() -> Self {
        Self {
            inner: B::default(),
            method: "unknown",
            done: false,
        }
    }
}

impl<B: Body> Body for CatchPanicBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let inner = this.inner;
        match panic::catch(|| inner.poll_frame(cx)) {
            Ok(frame) => frame,
            Err(panicked) => {
                let status = report(this.method, &panicked);
                let mut trailers = http::HeaderMap::new();
                // Only fails for a message that is not a valid header value; ours is.
                let _ = status.add_header(&mut trailers);
                *this.done = true;
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            return SizeHint::with_exact(0);
        }
        self.inner.size_hint()
    }
}
