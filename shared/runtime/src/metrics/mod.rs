//! Prometheus metrics: one registry per process, written in the text format (0.0.4) by
//! [`serve`] on `metrics.listen`. The series, which `k8s/dashboards/pdm.json` reads:
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `pdm_rpc_requests_total` | counter | `service`, `rpc_service`, `rpc_method`, `code` |
//! | `pdm_rpc_duration_seconds` | histogram | `service`, `rpc_service`, `rpc_method` |
//! | `pdm_consent_decisions_total` | counter | `outcome`, `reason` |
//! | `pdm_telemetry_events_total` | counter | `result`, `reason` |
//! | `pdm_rights_requests_open`, `pdm_rights_requests_overdue` | gauge | |
//! | `pdm_retention_purge_runs_total` | counter | `status` |
//! | `pdm_background_job_failures_total` | counter | `service`, `job` |
//!
//! The RPC series are recorded by [`crate::layers::metrics`] for every server; the others
//! by the services, through the typed functions of this module. Every label value is a
//! `&'static str` from a closed set: no personal data, no unbounded series.
//!
//! Values that live in a database (the rights queue) are read at scrape time by a
//! collector the service registers with [`on_scrape`].

mod family;
mod http;

use std::{
    future::Future,
    sync::{
        Arc, LazyLock, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

pub use family::{Counter, DURATION_BUCKETS, Encode, Family, Gauge, Histogram};
pub use http::{CONTENT_TYPE, serve};

use crate::layers::BoxFuture;

/// How long a scrape waits for the collectors.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);

type Collector = Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>;

/// Every metric of the process.
struct Registry {
    rpc_requests: Family<4, Counter>,
    rpc_duration: Family<3, Histogram>,
    consent_decisions: Family<2, Counter>,
    telemetry_events: Family<2, Counter>,
    rights_open: Family<0, Gauge>,
    rights_overdue: Family<0, Gauge>,
    purge_runs: Family<1, Counter>,
    job_failures: Family<2, Counter>,
    collectors: Mutex<Vec<(u64, Collector)>>,
    next_collector: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    rpc_requests: Family::new(
        "pdm_rpc_requests_total",
        "gRPC calls answered, by server, method and status code.",
        ["service", "rpc_service", "rpc_method", "code"],
    ),
    rpc_duration: Family::new(
        "pdm_rpc_duration_seconds",
        "Duration of gRPC calls until their status, by server and method.",
        ["service", "rpc_service", "rpc_method"],
    ),
    consent_decisions: Family::new(
        "pdm_consent_decisions_total",
        "Consent decisions (CheckProcessing, BatchCheckProcessing, CanContact), by outcome and reason.",
        ["outcome", "reason"],
    ),
    telemetry_events: Family::new(
        "pdm_telemetry_events_total",
        "Telemetry events received, by result and reason.",
        ["result", "reason"],
    ),
    rights_open: Family::new(
        "pdm_rights_requests_open",
        "Data-subject requests awaiting verification or in progress.",
        [],
    ),
    rights_overdue: Family::new(
        "pdm_rights_requests_overdue",
        "Open data-subject requests past their legal deadline.",
        [],
    ),
    purge_runs: Family::new(
        "pdm_retention_purge_runs_total",
        "Retention purge runs finished, by status.",
        ["status"],
    ),
    job_failures: Family::new(
        "pdm_background_job_failures_total",
        "Background jobs that ended before their service stopped (returned or panicked), by service and job.",
        ["service", "job"],
    ),
    collectors: Mutex::new(Vec::new()),
    next_collector: AtomicU64::new(0),
});

// === the series ===

/// Records one gRPC call (see [`crate::layers::metrics`]).
pub(crate) fn rpc_call(
    service: &'static str,
    rpc_service: &'static str,
    rpc_method: &'static str,
    code: &'static str,
    seconds: f64,
) {
    let registry = &*REGISTRY;
    registry
        .rpc_requests
        .with([service, rpc_service, rpc_method, code], |c| c.add(1));
    registry
        .rpc_duration
        .with([service, rpc_service, rpc_method], |h| h.observe(seconds));
}

/// Whether a consent decision allowed the processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allowed,
    /// Denied.
    Denied,
}

impl Outcome {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }
}

/// Counts `count` consent decisions; `reason` is the decision's reason in lower snake
/// case (`consent_given`, `no_consent`, `withdrawn` …).
pub fn consent_decisions(outcome: Outcome, reason: &'static str, count: u64) {
    REGISTRY
        .consent_decisions
        .with([outcome.label(), reason], |c| c.add(count));
}

/// What became of telemetry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventResult {
    /// Stored.
    Accepted,
    /// Dropped by the consent gate (the reason says why).
    Dropped,
    /// Their batch was refused (bad input, overload, an error): the caller may retry.
    Rejected,
    /// Their batch was stored before (same batch id): nothing stored again.
    Duplicate,
}

impl EventResult {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Dropped => "dropped",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Counts `count` telemetry events; `reason` in lower snake case (`no_consent`,
/// `restricted`, `erased`, `invalid` …).
pub fn telemetry_events(result: EventResult, reason: &'static str, count: u64) {
    if count == 0 {
        return;
    }
    REGISTRY
        .telemetry_events
        .with([result.label(), reason], |c| c.add(count));
}

/// How a purge run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeRunStatus {
    /// Every service answered (the run is COMPLETED).
    Ok,
    /// Some services did not answer (the run is PARTIAL, to be retried).
    Partial,
    /// The run could not be carried out (it is recovered as PARTIAL later).
    Failed,
}

impl PurgeRunStatus {
    /// The `status` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// Counts a finished purge run (or retry of one).
pub fn purge_run(status: PurgeRunStatus) {
    REGISTRY.purge_runs.with([status.label()], |c| c.add(1));
}

/// Counts a background job of `service` that ended before the service stopped.
pub fn job_failed(service: &'static str, job: &'static str) {
    REGISTRY.job_failures.with([service, job], |c| c.add(1));
}

/// Sets the rights request queue: requests open, and those of them past their deadline.
/// One rights service per process; with several (tests), the last one read wins.
pub fn rights_requests(open: u64, overdue: u64) {
    let registry = &*REGISTRY;
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    registry.rights_open.with([], |g| g.set(gauge(open)));
    registry.rights_overdue.with([], |g| g.set(gauge(overdue)));
}

// === collectors ===

/// A collector registered with [`on_scrape`]; dropping it unregisters it.
#[derive(Debug)]
#[must_use = "the collector is unregistered when this is dropped"]
pub struct ScrapeHook {
    id: u64,
}

impl Drop for ScrapeHook {
    fn drop(&mut self) {
        REGISTRY
            .collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}

/// Runs `collect` before every scrape (at most [`COLLECT_TIMEOUT`] for all of them; a
/// slow one leaves its series as they were), for values read from a database.
pub fn on_scrape<F, Fut>(collect: F) -> ScrapeHook
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let id = REGISTRY.next_collector.fetch_add(1, Ordering::Relaxed);
    let collector: Collector = Arc::new(move || Box::pin(collect()));
    REGISTRY
        .collectors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, collector));
    ScrapeHook { id }
}

// === exposition ===

/// Runs the collectors, then writes every metric in the text format.
pub async fn render() -> String {
    let collectors: Vec<Collector> = REGISTRY
        .collectors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, collector)| collector.clone())
        .collect();
    if !collectors.is_empty() {
        let all = futures_util::future::join_all(collectors.iter().map(|collect| collect()));
        if tokio::time::timeout(COLLECT_TIMEOUT, all).await.is_err() {
            tracing::warn!(
                timeout_ms = COLLECT_TIMEOUT.as_millis(),
                "metrics collectors did not finish in time: their series keep their last values"
            );
        }
    }
    encode()
}

/// Writes every metric in the text format as it is now (no collectors run).
pub fn encode() -> String {
    let registry = &*REGISTRY;
    let mut out = String::with_capacity(16 * 1024);
    registry.rpc_requests.encode(&mut out);
    registry.rpc_duration.encode(&mut out);
    registry.consent_decisions.encode(&mut out);
    registry.telemetry_events.encode(&mut out);
    registry.rights_open.encode(&mut out);
    registry.rights_overdue.encode(&mut out);
    registry.purge_runs.encode(&mut out);
    registry.job_failures.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collectors_run_at_scrape_until_dropped() {
        let runs = Arc::new(AtomicU64::new(0));
        let hook = on_scrape({
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let _ = render().await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        drop(hook);
        let _ = render().await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn every_dashboard_series_is_declared() {
        purge_run(PurgeRunStatus::Ok);
        let text = encode();
        for name in [
            "pdm_rpc_requests_total counter",
            "pdm_rpc_duration_seconds histogram",
            "pdm_consent_decisions_total counter",
            "pdm_telemetry_events_total counter",
            "pdm_rights_requests_open gauge",
            "pdm_rights_requests_overdue gauge",
            "pdm_retention_purge_runs_total counter",
        ] {
            assert!(text.contains(&format!("# TYPE {name}\n")), "{name}: {text}");
        }
        assert!(
            text.contains("pdm_retention_purge_runs_total{status=\"ok\"} "),
            "{text}"
        );
    }
}
