//! `pdm_incidents_overdue` for Prometheus: open incidents with an authority deadline
//! passed and no initial notification, read from the database at scrape time.

use std::sync::LazyLock;

use pdm_metrics::{Family, Gauge, ScrapeHook, on_scrape};

use crate::api::IncidentsApi;

/// `pdm_incidents_overdue`.
static OVERDUE: LazyLock<Family<0, Gauge>> = LazyLock::new(|| {
    Family::new(
        "pdm_incidents_overdue",
        "Open incidents past an authority deadline without their initial notification.",
        [],
    )
});

/// Adds the incidents service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register(&*OVERDUE);
}

/// Sets `pdm_incidents_overdue` from the database before every scrape, until the hook is
/// dropped. A failed read leaves it as it was. One incidents service per process; with
/// several (tests), the last one read wins.
pub fn overdue_gauge(api: IncidentsApi) -> ScrapeHook {
    on_scrape(move || {
        let api = api.clone();
        async move {
            match api.overdue_now().await {
                Ok(overdue) => {
                    let n = i64::try_from(overdue.len()).unwrap_or(i64::MAX);
                    OVERDUE.with([], |g| g.set(n));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: reading the overdue incidents failed");
                }
            }
        }
    })
}
