//! `pdm_incidents_overdue` for Prometheus: open incidents with an authority deadline
//! passed and no initial notification, read from the database at scrape time; and
//! `pdm_assessments_review_overdue{kind}`: impact assessments past their review date.

use std::sync::LazyLock;

use pdm_metrics::{Family, Gauge, ScrapeHook, on_scrape};

use crate::api::{IncidentsApi, assessments::AssessmentsApi};

/// `pdm_incidents_overdue`.
static OVERDUE: LazyLock<Family<0, Gauge>> = LazyLock::new(|| {
    Family::new(
        "pdm_incidents_overdue",
        "Open incidents past an authority deadline without their initial notification.",
        [],
    )
});

/// `pdm_assessments_review_overdue{kind}`.
static REVIEWS_OVERDUE: LazyLock<Family<1, Gauge>> = LazyLock::new(|| {
    Family::new(
        "pdm_assessments_review_overdue",
        "Impact assessments past their review date: kind dpia (this register) or tia (transfer impact assessments of the transfers service's active mechanisms).",
        ["kind"],
    )
});

/// Adds the incidents service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register(&*OVERDUE);
    pdm_metrics::register(&*REVIEWS_OVERDUE);
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

/// Sets `pdm_assessments_review_overdue` before every scrape, until the hook is dropped:
/// `dpia` from the database, `tia` from the transfers service. A failed read leaves its
/// series as it was.
pub fn reviews_gauge(api: AssessmentsApi) -> ScrapeHook {
    on_scrape(move || {
        let api = api.clone();
        async move {
            match api.dpias_due().await {
                Ok(due) => {
                    let n = i64::try_from(due.len()).unwrap_or(i64::MAX);
                    REVIEWS_OVERDUE.with(["dpia"], |g| g.set(n));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: reading the overdue assessments failed");
                }
            }
            match api.tias_due().await {
                Ok(due) => {
                    let n = i64::try_from(due.len()).unwrap_or(i64::MAX);
                    REVIEWS_OVERDUE.with(["tia"], |g| g.set(n));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: asking transfers for the overdue tias failed");
                }
            }
        }
    })
}
