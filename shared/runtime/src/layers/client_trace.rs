//! A client span per call to another service, following the OpenTelemetry RPC conventions
//! (`rpc.system`, `rpc.service`, `rpc.method`, `server.address`, `server.port`,
//! `rpc.grpc.status_code`). The span is a child of the caller's current span, and its own
//! context travels as W3C `traceparent`, so the server's span is the client span's child.
//!
//! The status comes from the response headers when the server answered with headers only
//! (most refusals), else from the trailers at the end of the body: the span lasts until
//! the caller has read the whole answer (a stream's last message). A call given up before
//! its answer ended is `CANCELLED`. Nothing from the messages is recorded: spans carry no
//! personal data.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::TraceContextExt;
use pin_project_lite::pin_project;
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::BoxFuture;
use crate::propagation;

/// The error of a traced call: a [`Status`], which tonic hands to the caller unchanged.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds [`ClientTrace`] to a channel.
#[derive(Debug, Clone)]
pub struct ClientTraceLayer {
    address: Arc<str>,
    port: u16,
    identity: Option<(http::HeaderName, http::HeaderValue)>,
}

impl ClientTraceLayer {
    /// Spans of calls to the server at `uri` (its host and port name the server).
    pub fn new(uri: &http::Uri) -> Self {
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        Self {
            address: uri.host().unwrap_or_default().into(),
            port: uri.port_u16().unwrap_or(default_port),
            identity: None,
        }
    }

    /// Also sends `header` with every call: in plaintext mode, the caller's identity as a
    /// sidecar would pass it (see [`pdm_tls::sidecar`]).
    pub fn with_identity(mut self, header: Option<(http::HeaderName, http::HeaderValue)>) -> Self {
        self.identity = header;
        self
    }
}

impl<S> Layer<S> for ClientTraceLayer {
    type Service = ClientTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientTrace {
            inner,
            address: self.address.clone(),
            port: self.port,
            identity: self.identity.clone(),
        }
    }
}

/// Wraps each call in a client span and sends that span's context to the server.
#[derive(Debug, Clone)]
pub struct ClientTrace<S> {
    inner: S,
    address: Arc<str>,
    port: u16,
    identity: Option<(http::HeaderName, http::HeaderValue)>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ClientTrace<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<TracedBody<ResBody>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let full_method = request.uri().path().trim_start_matches('/');
        let (service, method) = full_method.split_once('/').unwrap_or((full_method, ""));
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = full_method,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            server.address = &*self.address,
            // An int attribute: tracing-opentelemetry records unsigned fields as text.
            server.port = i64::from(self.port),
            rpc.grpc.status_code = Empty,
            otel.status_code = Empty,
        );
        // The server's span becomes this span's child. Without a tracer (no subscriber),
        // the caller's own context still travels.
        let mut context = span.context();
        if !context.span().span_context().is_valid() {
            context = tracing::Span::current().context();
        }
        propagation::inject(&context, request.headers_mut());
        if let Some((name, value)) = &self.identity {
            request.headers_mut().insert(name.clone(), value.clone());
        }

        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let call = Call {
            span: span.clone(),
            finished: false,
        };
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => {
                        let without_trailers = missing_status(response.status());
                        if let Some(code) = grpc_status(response.headers()) {
                            // Headers only: the answer is complete.
                            call.finish(code);
                            return Ok(response.map(|inner| TracedBody {
                                inner,
                                call: None,
                                without_trailers,
                            }));
                        }
                        Ok(response.map(|inner| TracedBody {
                            inner,
                            call: Some(call),
                            without_trailers,
                        }))
                    }
                    Err(err) => {
                        // The status tonic would make of the error, made here so the span
                        // and the caller see the same code.
                        let status = Status::from_error(err.into());
                        call.finish(status.code());
                        Err(Box::new(status) as BoxError)
                    }
                }
            }
            .instrument(span),
        )
    }
}

// === impl TracedBody ===

pin_project! {
    /// A response body that records the call's status when its trailers arrive.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
        // The code when the body ends without a `grpc-status` trailer.
        without_trailers: Code,
    }
}

impl<B> Body for TracedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = ready!(this.inner.poll_frame(cx));
        let (code, polled) = match polled {
            Some(Ok(frame)) => {
                let code = frame
                    .trailers_ref()
                    .map(|trailers| grpc_status(trailers).unwrap_or(*this.without_trailers));
                (code, Some(Ok(frame)))
            }
            Some(Err(err)) => {
                let status = Status::from_error(err.into());
                (Some(status.code()), Some(Err(status)))
            }
            None => (Some(*this.without_trailers), None),
        };
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for TracedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedBody")
            .field("finished", &self.call.is_none())
            .finish_non_exhaustive()
    }
}

// === impl Call ===

/// A call whose status is not recorded yet: dropped unfinished, it was cancelled.
struct Call {
    span: tracing::Span,
    finished: bool,
}

impl Call {
    fn finish(mut self, code: Code) {
        self.finished = true;
        record(&self.span, code);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            record(&self.span, Code::Cancelled);
        }
    }
}

fn record(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i32);
    // For a client every status but OK is an error (OpenTelemetry RPC conventions).
    if code != Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
}

/// The `grpc-status` in `headers` (response headers or trailers).
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get(Status::GRPC_STATUS)
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The status a caller sees for an answer without `grpc-status` (as tonic maps it).
fn missing_status(status: http::StatusCode) -> Code {
    match status {
        http::StatusCode::BAD_REQUEST => Code::Internal,
        http::StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        http::StatusCode::FORBIDDEN => Code::PermissionDenied,
        http::StatusCode::NOT_FOUND => Code::Unimplemented,
        http::StatusCode::TOO_MANY_REQUESTS
        | http::StatusCode::BAD_GATEWAY
        | http::StatusCode::SERVICE_UNAVAILABLE
        | http::StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{HashMap, VecDeque},
        sync::Mutex,
    };

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
    use tracing::{
        Subscriber,
        field::{Field, Visit},
        span::{Attributes, Id, Record},
    };
    use tracing_subscriber::{Layer as _, layer::SubscriberExt, registry::LookupSpan};

    use super::*;

    /// The fields every span got, by span, and whether it has ended.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Recorded>>>);

    #[derive(Debug, Clone, Default)]
    struct Recorded {
        name: &'static str,
        fields: HashMap<String, String>,
        closed: bool,
    }

    struct Fields<'a>(&'a mut HashMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
        fn on_new_span(
            &self,
            attrs: &Attributes<'_>,
            id: &Id,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut recorded = Recorded {
                name: attrs.metadata().name(),
                ..Recorded::default()
            };
            attrs.record(&mut Fields(&mut recorded.fields));
            let mut spans = self.0.lock().expect("not poisoned");
            let index = spans.len();
            spans.push(recorded);
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Index(index));
            }
        }

        fn on_record(
            &self,
            id: &Id,
            values: &Record<'_>,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if let Some(Index(index)) = ctx.span(id).and_then(|s| s.extensions().get().copied()) {
                values.record(&mut Fields(
                    &mut self.0.lock().expect("not poisoned")[index].fields,
                ));
            }
        }

        fn on_close(&self, id: Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
            if let Some(Index(index)) = ctx.span(&id).and_then(|s| s.extensions().get().copied()) {
                self.0.lock().expect("not poisoned")[index].closed = true;
            }
        }
    }

    /// Where a span's record is in the [`Recorder`].
    #[derive(Clone, Copy)]
    struct Index(usize);

    impl Recorder {
        fn client_spans(&self) -> Vec<Recorded> {
            self.0
                .lock()
                .expect("not poisoned")
                .iter()
                .filter(|s| s.name == "rpc.client")
                .cloned()
                .collect()
        }

        fn only_client_span(&self) -> Recorded {
            let spans = self.client_spans();
            assert_eq!(spans.len(), 1, "{spans:?}");
            spans.into_iter().next().expect("a span")
        }
    }

    /// A response body of the given frames.
    struct Frames(VecDeque<Frame<&'static [u8]>>);

    impl Body for Frames {
        type Data = &'static [u8];
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    fn trailers(code: &'static str) -> Frame<&'static [u8]> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static(code));
        Frame::trailers(trailers)
    }

    /// The answer the fake server gives.
    #[derive(Clone)]
    enum Answer {
        /// Headers with `grpc-status` and no body.
        TrailersOnly(&'static str),
        /// A message, then trailers with this code.
        Message(&'static str),
        /// A transport failure.
        Fails,
        /// Never answers.
        Hangs,
    }

    type Seen = Arc<Mutex<Option<HeaderMap>>>;

    type Server =
        tower::util::BoxCloneService<http::Request<&'static str>, http::Response<Frames>, BoxError>;

    fn server(answer: Answer, seen: Seen) -> Server {
        tower::util::BoxCloneService::new(tower::service_fn(
            move |request: http::Request<&'static str>| {
                *seen.lock().expect("not poisoned") = Some(request.headers().clone());
                let answer = answer.clone();
                Box::pin(async move {
                    match answer {
                        Answer::TrailersOnly(code) => Ok(http::Response::builder()
                            .header("grpc-status", code)
                            .body(Frames(VecDeque::new()))
                            .expect("a response")),
                        Answer::Message(code) => Ok(http::Response::new(Frames(VecDeque::from([
                            Frame::data(&b"\0\0\0\0\x01x"[..]),
                            trailers(code),
                        ])))),
                        Answer::Fails => {
                            Err(Box::new(Status::unavailable("connection refused")) as BoxError)
                        }
                        Answer::Hangs => std::future::pending().await,
                    }
                }) as BoxFuture<_>
            },
        ))
    }

    /// A subscriber recording span fields, with an OpenTelemetry tracer (no exporter), as
    /// the default of this thread.
    fn subscribe() -> (Recorder, tracing::subscriber::DefaultGuard) {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let recorder = Recorder::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(recorder.clone()).with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .boxed(),
        );
        (recorder, tracing::subscriber::set_default(subscriber))
    }

    fn client(answer: Answer) -> (ClientTrace<Server>, Seen) {
        let seen = Seen::default();
        let uri: http::Uri = "http://consent.pdm.svc:50052".parse().expect("a URI");
        (
            ClientTraceLayer::new(&uri).layer(server(answer, seen.clone())),
            seen,
        )
    }

    fn request() -> http::Request<&'static str> {
        // The message holds personal data: none of it may reach the span.
        http::Request::builder()
            .uri("http://consent.pdm.svc:50052/pdm.consent.v1.ConsentService/GrantConsent")
            .body("jane.doe@example.com")
            .expect("a request")
    }

    async fn drain(body: &mut TracedBody<Frames>) -> Vec<Result<Frame<&'static [u8]>, Code>> {
        let mut frames = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        {
            frames.push(frame.map_err(|s| s.code()));
        }
        frames
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_span_follows_the_rpc_conventions_and_sends_its_context() {
        let (recorder, _guard) = subscribe();
        let (mut client, seen) = client(Answer::Message("0"));
        let caller = tracing::info_span!("caller");
        let caller_context = caller.context().span().span_context().clone();
        // As tonic does: the call is made while the caller's future runs, in its span.
        let mut response = async { client.call(request()).await }
            .instrument(caller)
            .await
            .expect("an answer");
        drain(response.body_mut()).await;
        drop(response);

        let span = recorder.only_client_span();
        let field = |name: &str| span.fields.get(name).cloned().unwrap_or_default();
        assert_eq!(
            field("otel.name"),
            "pdm.consent.v1.ConsentService/GrantConsent"
        );
        assert_eq!(field("otel.kind"), "client");
        assert_eq!(field("rpc.system"), "grpc");
        assert_eq!(field("rpc.service"), "pdm.consent.v1.ConsentService");
        assert_eq!(field("rpc.method"), "GrantConsent");
        assert_eq!(field("server.address"), "consent.pdm.svc");
        assert_eq!(field("server.port"), "50052");
        assert_eq!(field("rpc.grpc.status_code"), "0");
        assert!(!span.fields.contains_key("otel.status_code"), "{span:?}");
        assert!(span.closed);
        // Nothing of the message.
        for (name, value) in &span.fields {
            assert!(!value.contains("jane.doe"), "{name} = {value}");
        }

        // The server was sent the client span's context: the caller's trace, a new span.
        let headers = seen
            .lock()
            .expect("not poisoned")
            .clone()
            .expect("a request");
        let traceparent = headers["traceparent"].to_str().expect("ASCII").to_owned();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], caller_context.trace_id().to_string());
        assert_ne!(parts[2], caller_context.span_id().to_string());
        assert_ne!(parts[2], "0000000000000000");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_trailers_only_answer_ends_the_span_with_the_status_of_the_headers() {
        let (recorder, _guard) = subscribe();
        let (mut client, _) = client(Answer::TrailersOnly("7"));
        let response = client.call(request()).await.expect("an answer");
        // Recorded before the body is read: nothing more is coming.
        let span = recorder.only_client_span();
        assert_eq!(span.fields["rpc.grpc.status_code"], "7");
        assert_eq!(span.fields["otel.status_code"], "ERROR");
        drop(response);
        let span = recorder.only_client_span();
        assert_eq!(span.fields["rpc.grpc.status_code"], "7", "not overwritten");
        assert!(span.closed);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_status_of_an_answer_with_a_body_comes_from_its_trailers() {
        let (recorder, _guard) = subscribe();
        let (mut client, _) = client(Answer::Message("5"));
        let mut response = client.call(request()).await.expect("an answer");
        // The headers say nothing yet, and the span lasts until the caller read the end.
        let span = recorder.only_client_span();
        assert!(
            !span.fields.contains_key("rpc.grpc.status_code"),
            "{span:?}"
        );
        assert!(!span.closed);
        let frames = drain(response.body_mut()).await;
        assert_eq!(frames.len(), 2, "the message and the trailers pass through");
        let span = recorder.only_client_span();
        assert_eq!(span.fields["rpc.grpc.status_code"], "5");
        assert_eq!(span.fields["otel.status_code"], "ERROR");
        drop(response);
        assert!(recorder.only_client_span().closed);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_ending_without_trailers_gets_the_status_tonic_would_give() {
        let (recorder, _guard) = subscribe();
        let seen = Seen::default();
        let inner = tower::service_fn(move |request: http::Request<&'static str>| {
            *seen.lock().expect("not poisoned") = Some(request.headers().clone());
            async {
                Ok::<_, BoxError>(
                    http::Response::builder()
                        .status(http::StatusCode::SERVICE_UNAVAILABLE)
                        .body(Frames(VecDeque::new()))
                        .expect("a response"),
                )
            }
        });
        let uri: http::Uri = "http://consent:50052".parse().expect("a URI");
        let mut client = ClientTraceLayer::new(&uri).layer(inner);
        let mut response = client.call(request()).await.expect("an answer");
        drain(response.body_mut()).await;
        let span = recorder.only_client_span();
        assert_eq!(
            span.fields["rpc.grpc.status_code"],
            (Code::Unavailable as i32).to_string()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_call_records_the_status_the_caller_sees() {
        let (recorder, _guard) = subscribe();
        let (mut client, _) = client(Answer::Fails);
        let err = client.call(request()).await.expect_err("fails");
        let status = err.downcast::<Status>().expect("a status");
        assert_eq!(status.code(), Code::Unavailable);
        let span = recorder.only_client_span();
        assert_eq!(
            span.fields["rpc.grpc.status_code"],
            (Code::Unavailable as i32).to_string()
        );
        assert_eq!(span.fields["otel.status_code"], "ERROR");
        assert!(span.closed);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_given_up_is_cancelled() {
        let (recorder, _guard) = subscribe();
        // Before the answer came.
        let (mut hanging, _) = client(Answer::Hangs);
        let future = hanging.call(request());
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), future)
                .await
                .is_err()
        );
        // After the headers, before the trailers.
        let (mut client, _) = client(Answer::Message("0"));
        let response = client.call(request()).await.expect("an answer");
        drop(response);

        let spans = recorder.client_spans();
        assert_eq!(spans.len(), 2, "{spans:?}");
        for span in spans {
            assert_eq!(
                span.fields["rpc.grpc.status_code"],
                (Code::Cancelled as i32).to_string(),
                "{span:?}"
            );
            assert_eq!(span.fields["otel.status_code"], "ERROR");
            assert!(span.closed);
        }
    }
}
