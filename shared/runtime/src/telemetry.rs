//! Logs and traces: human-readable logs in a terminal and JSON otherwise, an OpenTelemetry
//! tracer that always runs (so trace context flows through the mesh) and exports over
//! OTLP/gRPC when an endpoint is configured.

use std::{io::IsTerminal, time::Duration};

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Event, Metadata, level_filters::LevelFilter, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    fmt::MakeWriter,
    layer::{Context, Filter, SubscriberExt},
    util::SubscriberInitExt,
};

use crate::settings::{LogFormat, Settings};

/// Spans of these targets never reach the exporter: exporting them would make more spans.
const OTEL_FILTER: &str = "info,sqlx=off,sea_orm=off,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off,opentelemetry_sdk=off";

/// Keeps the tracer alive; [`TelemetryGuard::shutdown`] flushes spans still buffered.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Exports the spans ended so far now, waiting for the exporter. Blocks the thread: on
    /// a Tokio runtime, call it from `spawn_blocking` (the exporter needs the runtime).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.provider.force_flush()?;
        Ok(())
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {err}");
        }
    }
}

/// Who is emitting: names the OpenTelemetry resource.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// `service.name`, e.g. `pdm-identity`, or `pdm` for several services in one process.
    pub name: String,
    /// `service.version`.
    pub version: String,
}

/// The OTLP endpoint in effect: `otlp.endpoint`, else `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn otlp_endpoint(settings: &Settings) -> Option<String> {
    if !settings.otlp.endpoint.is_empty() {
        return Some(settings.otlp.endpoint.clone());
    }
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// Installs the global subscriber for a process writing logs to stdout. Must run inside a
/// Tokio runtime (the OTLP exporter is built on it).
pub fn init(settings: &Settings, identity: &ServiceIdentity) -> anyhow::Result<TelemetryGuard> {
    let json = match settings.log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.log.filter.clone());
    let (provider, exporting) = tracer_provider(settings, identity)?;
    install(&filter, json, std::io::stdout, &provider)?;
    Ok(TelemetryGuard {
        provider,
        exporting,
    })
}

/// Installs a global subscriber writing JSON logs to `writer` (tests capture logs with it).
/// Returns an error when a global subscriber is already set.
pub fn init_with_writer<W>(filter: &str, writer: W) -> anyhow::Result<TelemetryGuard>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let provider = SdkTracerProvider::builder().build();
    install(filter, true, writer, &provider)?;
    Ok(TelemetryGuard {
        provider,
        exporting: false,
    })
}

/// [`init_with_writer`], exporting spans as [`init`] does (to `otlp.endpoint`, with the
/// same resource): tests point it at an in-process collector. Must run inside a Tokio
/// runtime, which must outlive the exporter.
pub fn init_with_writer_exporting<W>(
    filter: &str,
    writer: W,
    settings: &Settings,
    identity: &ServiceIdentity,
) -> anyhow::Result<TelemetryGuard>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (provider, exporting) = tracer_provider(settings, identity)?;
    install(filter, true, writer, &provider)?;
    Ok(TelemetryGuard {
        provider,
        exporting,
    })
}

fn tracer_provider(
    settings: &Settings,
    identity: &ServiceIdentity,
) -> anyhow::Result<(SdkTracerProvider, bool)> {
    let resource = Resource::builder()
        .with_service_name(identity.name.clone())
        .with_attributes([
            KeyValue::new("service.version", identity.version.clone()),
            KeyValue::new(
                "deployment.environment.name",
                settings.otlp.environment.clone(),
            ),
        ])
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    match otlp_endpoint(settings) {
        Some(endpoint) => {
            // Connects lazily: the service starts whether or not a collector listens.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(Duration::from_secs(3))
                .build()?;
            Ok((builder.with_batch_exporter(exporter).build(), true))
        }
        None => Ok((builder.build(), false)),
    }
}

fn install<W>(
    filter: &str,
    json: bool,
    writer: W,
    provider: &SdkTracerProvider,
) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());

    let fmt_layer: Box<dyn Layer<Registry> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(AskEveryTime(EnvFilter::try_new(filter)?))
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(AskEveryTime(EnvFilter::try_new(filter)?))
            .boxed()
    };
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("pdm"))
        .with_filter(AskEveryTime(EnvFilter::try_new(OTEL_FILTER)?))
        .boxed();
    tracing_subscriber::registry()
        .with(vec![fmt_layer, otel_layer])
        .try_init()?;
    Ok(())
}

/// A per-layer filter whose callsites are never cached as always enabled, so it is asked
/// about every span and event. tracing-subscriber hands a per-layer decision from
/// `enabled` to `on_new_span` through a thread-local; a callsite cached as "always" skips
/// `enabled`, and the span then read the bits of whatever was asked last on that thread.
/// sqlx asks a dynamic `enabled!` after every query, so the first span after a query
/// vanished from the layers: from traces (a root span with no trace id) and from the logs
/// (tokio-rs/tracing#2519, the fix proposed upstream in #3572 does the same).
struct AskEveryTime<F>(F);

impl<S, F: Filter<S>> Filter<S> for AskEveryTime<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.0.enabled(meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let interest = self.0.callsite_enabled(meta);
        if interest.is_never() {
            interest
        } else {
            Interest::sometimes()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_enter(id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_exit(id, cx);
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        self.0.on_close(id, cx);
    }
}
