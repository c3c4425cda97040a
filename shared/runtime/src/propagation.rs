//! W3C trace context in gRPC metadata: read on the way in, written on the way out.

use http::HeaderMap;
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
};
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads `traceparent`/`tracestate` from HTTP/2 headers.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes trace context into outgoing HTTP/2 headers.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes trace context into outgoing gRPC metadata.
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The parent context carried by incoming headers (empty when there is none).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's trace context into `metadata`.
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

/// Writes `context` into outgoing `headers` (the client layer sends its span's context).
pub fn inject(context: &opentelemetry::Context, headers: &mut HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(context, &mut HeaderInjector(headers)));
}

/// The current span's W3C `traceparent`, to store with background work.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = std::collections::HashMap::new();
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// The context a stored `traceparent` names, to continue its trace.
pub fn from_traceparent(traceparent: &str) -> opentelemetry::Context {
    let carrier: std::collections::HashMap<String, String> =
        [("traceparent".to_owned(), traceparent.to_owned())]
            .into_iter()
            .collect();
    global::get_text_map_propagator(|p| p.extract(&carrier))
}
