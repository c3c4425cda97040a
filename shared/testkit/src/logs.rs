//! Captures every log line of the test process (at debug level, so more is checked than
//! production would print) for assertions that no personal data reaches the logs; and,
//! for the trace tests, exports the process's spans to a collector.

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use pdm_runtime::{
    Settings,
    telemetry::{ServiceIdentity, TelemetryGuard},
};
use tracing_subscriber::fmt::MakeWriter;

/// A shared buffer of captured log output.
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Everything logged so far.
    pub fn contents(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Panics, naming the value's kind (never the value), if any of `secrets` appears.
    pub fn assert_clean(&self, secrets: &[(&str, &str)]) {
        let contents = self.contents();
        assert!(
            !contents.is_empty(),
            "no logs were captured: the capture is not wired"
        );
        for (kind, value) in secrets {
            if value.is_empty() {
                continue;
            }
            assert!(
                !contents.contains(value),
                "personal data ({kind}) found in the logs"
            );
        }
    }
}

/// The writer handed to the subscriber.
#[derive(Debug, Clone)]
pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.buffer.clone())
    }
}

static CAPTURE: OnceLock<LogCapture> = OnceLock::new();

/// What the capture logs: debug, without the libraries' chatter.
const FILTER: &str = "debug,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=info";

/// The process-wide capture, installed as the global subscriber on first use. When a
/// global subscriber is already set (by another part of the test), the capture stays
/// empty rather than failing.
pub fn captured_logs() -> LogCapture {
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            // The guard is leaked on purpose: the tracer lives as long as the process.
            if let Ok(guard) = pdm_runtime::telemetry::init_with_writer(FILTER, capture.clone()) {
                std::mem::forget(guard);
            }
            capture
        })
        .clone()
}

/// Installs the process-wide capture (as [`captured_logs`] would) with a tracer that
/// exports every span over OTLP/gRPC to `endpoint`, as `pdm serve` does; the guard
/// flushes the exporter. Call it before anything else in the test process logs, on the
/// multi-threaded Tokio runtime that outlives the exporter (the test's own).
pub fn export_spans(endpoint: &str) -> anyhow::Result<(LogCapture, TelemetryGuard)> {
    let settings =
        Settings::with_overrides([("otlp.endpoint", endpoint), ("otlp.environment", "test")])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let identity = ServiceIdentity {
        name: "pdm".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut installed = None;
    let capture = CAPTURE.get_or_init(|| {
        let capture = LogCapture::default();
        installed = Some(pdm_runtime::telemetry::init_with_writer_exporting(
            FILTER,
            capture.clone(),
            &settings,
            &identity,
        ));
        capture
    });
    match installed {
        Some(guard) => Ok((capture.clone(), guard?)),
        None => anyhow::bail!("the log capture was installed before spans could be exported"),
    }
}
