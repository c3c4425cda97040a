//! The request queue for Prometheus (`pdm_rights_requests_open`,
//! `pdm_rights_requests_overdue`), read from the database at scrape time.

use std::sync::LazyLock;

use pdm_metrics::{Family, Gauge, ScrapeHook, on_scrape};
use pdm_runtime::clock::SharedClock;

use crate::store::Store;

/// `pdm_rights_requests_open`.
static OPEN: LazyLock<Family<0, Gauge>> = LazyLock::new(|| {
    Family::new(
        "pdm_rights_requests_open",
        "Data-subject requests awaiting verification or in progress.",
        [],
    )
});

/// `pdm_rights_requests_overdue`.
static OVERDUE: LazyLock<Family<0, Gauge>> = LazyLock::new(|| {
    Family::new(
        "pdm_rights_requests_overdue",
        "Open data-subject requests past their legal deadline.",
        [],
    )
});

/// Adds the rights service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register_all(&[&*OPEN, &*OVERDUE]);
}

/// Sets the queue: requests open, and those of them past their deadline. One rights
/// service per process; with several (tests), the last one read wins.
fn requests(open: u64, overdue: u64) {
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    OPEN.with([], |g| g.set(gauge(open)));
    OVERDUE.with([], |g| g.set(gauge(overdue)));
}

/// Sets `pdm_rights_requests_open` and `pdm_rights_requests_overdue` from the database
/// before every scrape, until the hook is dropped. A failed read leaves them as they were.
pub fn queue_gauges(store: Store, clock: SharedClock) -> ScrapeHook {
    on_scrape(move || {
        let store = store.clone();
        let now = clock.now();
        async move {
            match store.queue(now).await {
                Ok(queue) => requests(queue.open, queue.overdue),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: reading the request queue failed");
                }
            }
        }
    })
}
