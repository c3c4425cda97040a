//! The process-wide registry: the families registered so far, and the collectors that
//! refresh values read from a database before a scrape.
//!
//! A family is a `static` of the crate that records it; it is registered (once, however
//! many times `register` is called) when its owner starts, so a scrape shows exactly the
//! series of the services this process runs.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::family::{Encode, Family};

/// How long a scrape waits for the collectors.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);

type Collector = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A metric family as the registry sees it: a name and its text encoding.
pub trait Metric: Send + Sync {
    /// The family's name (`pdm_…`).
    fn name(&self) -> &'static str;

    /// Writes the family in the text format.
    fn encode(&self, out: &mut String);
}

impl<const N: usize, M: Encode + Send + Sync> Metric for Family<N, M> {
    fn name(&self) -> &'static str {
        Family::name(self)
    }

    fn encode(&self, out: &mut String) {
        Family::encode(self, out);
    }
}

#[derive(Default)]
struct Registry {
    /// Sorted by name, so a scrape reads the same whatever order services started in.
    metrics: Mutex<Vec<&'static dyn Metric>>,
    collectors: Mutex<Vec<(u64, Collector)>>,
    next_collector: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// Adds `metric` to what a scrape writes. Registering the same family again does nothing;
/// a second family with a taken name is refused (logged), since Prometheus would reject
/// the scrape.
pub fn register(metric: &'static dyn Metric) {
    let mut metrics = REGISTRY
        .metrics
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match metrics.binary_search_by(|m| m.name().cmp(metric.name())) {
        Ok(at) => {
            let same = std::ptr::addr_eq(metrics[at], metric);
            if !same {
                tracing::error!(
                    metric = metric.name(),
                    "a second metric family with this name was not registered"
                );
            }
        }
        Err(at) => metrics.insert(at, metric),
    }
}

/// Adds every family of `metrics` (see [`register`]).
pub fn register_all(metrics: &[&'static dyn Metric]) {
    for metric in metrics {
        register(*metric);
    }
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

/// Runs the collectors, then writes every registered family in the text format.
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

/// Writes every registered family in the text format as it is now (no collectors run).
pub fn encode() -> String {
    let metrics: Vec<&'static dyn Metric> = REGISTRY
        .metrics
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut out = String::with_capacity(16 * 1024);
    for metric in metrics {
        metric.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{Counter, Gauge};

    static SEEN: LazyLock<Family<1, Counter>> =
        LazyLock::new(|| Family::new("pdm_test_seen_total", "Seen.", ["kind"]));
    static OPEN: LazyLock<Family<0, Gauge>> =
        LazyLock::new(|| Family::new("pdm_test_open", "Open.", []));
    static IMPOSTOR: LazyLock<Family<0, Gauge>> =
        LazyLock::new(|| Family::new("pdm_test_open", "Not the first.", []));

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
    fn a_family_is_written_once_registered_once_and_in_name_order() {
        assert!(!encode().contains("pdm_test_seen_total"));
        SEEN.with(["a"], |c| c.add(2));
        register_all(&[&*SEEN, &*OPEN, &*SEEN]);
        register(&*IMPOSTOR);
        let text = encode();
        assert_eq!(
            text.matches("# TYPE pdm_test_seen_total counter\n").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("pdm_test_seen_total{kind=\"a\"} 2\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE pdm_test_open gauge\n").count(),
            1,
            "{text}"
        );
        assert!(text.contains("# HELP pdm_test_open Open.\n"), "{text}");
        let open = text.find("pdm_test_open").unwrap_or(usize::MAX);
        let seen = text.find("pdm_test_seen_total").unwrap_or(0);
        assert!(open < seen, "{text}");
    }
}
