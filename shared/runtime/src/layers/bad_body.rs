//! A request body that is not the method's message answers `INVALID_ARGUMENT`, naming the
//! message type expected. tonic reports these as `INTERNAL` ("failed to decode Protobuf
//! message", "Missing request message.", a frame cut short, a bad compression flag): to
//! the caller that reads as our fault, and to a retrying client as worth retrying.
//!
//! A message past the size limit answers `RESOURCE_EXHAUSTED`, as gRPC specifies (tonic
//! says `OUT_OF_RANGE`).
//!
//! Only tonic's own answers are rewritten: a trailers-only `INTERNAL` whose message is one
//! of the decoder's. Our handlers report internal errors as `internal error (id …)`,
//! which never matches. Nothing of the request is echoed.

use std::task::{Context, Poll};

use tonic::{Code, Status};
use tower::{Layer, Service};

use super::{BoxFuture, grpc_status::code_of, methods};

/// The messages tonic's decoder answers `INTERNAL` with, by prefix, and what they mean.
const DECODER_MESSAGES: &[(&str, &str)] = &[
    ("failed to decode Protobuf message", "it does not decode"),
    ("Missing request message", "the body holds no message"),
    (
        "Unexpected EOF decoding stream",
        "the body ends inside a message",
    ),
    (
        "protocol error: received message with",
        "the message frame is malformed",
    ),
    ("Error decompressing", "the message does not decompress"),
];

/// tonic's `OUT_OF_RANGE` for a message past the size limit; gRPC's code for that is
/// `RESOURCE_EXHAUSTED`.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// Adds [`BadBody`] to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct BadBodyLayer;

impl<S> Layer<S> for BadBodyLayer {
    type Service = BadBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        methods::load();
        BadBody { inner }
    }
}

/// Rewrites the decoder's `INTERNAL` as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct BadBody<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for BadBody<S>
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
        let method = methods::find(request.uri().path());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let code = code_of(response.headers());
            if !matches!(code, Some(Code::Internal | Code::OutOfRange)) {
                return Ok(response);
            }
            let Some(status) = Status::from_header_map(response.headers()) else {
                return Ok(response);
            };
            let expected = method.map_or("the method's request message", |m| m.input.as_str());
            if code == Some(Code::OutOfRange) && status.message().starts_with(TOO_LARGE) {
                return Ok(Status::resource_exhausted(format!(
                    "the request message is larger than the server's limit \
                     (server.max_message_bytes): {expected}"
                ))
                .into_http());
            }
            let Some(why) = decoder_problem(status.message()) else {
                return Ok(response);
            };
            Ok(Status::invalid_argument(format!(
                "the request body is not a valid {expected}: {why}"
            ))
            .into_http())
        })
    }
}

/// What went wrong, when `message` is one of the decoder's.
fn decoder_problem(message: &str) -> Option<&'static str> {
    DECODER_MESSAGES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoders_messages_are_recognised_and_ours_are_not() {
        assert_eq!(
            decoder_problem("failed to decode Protobuf message: invalid wire type"),
            Some("it does not decode")
        );
        assert_eq!(
            decoder_problem("Missing request message."),
            Some("the body holds no message")
        );
        assert_eq!(decoder_problem("internal error (id 0192)"), None);
    }
}
