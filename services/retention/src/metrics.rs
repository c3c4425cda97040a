//! Purge runs counted for Prometheus (`pdm_retention_purge_runs_total{status}`).

use std::sync::LazyLock;

use pdm_metrics::{Counter, Family};

use crate::domain::run::PurgeRunStatus;

/// `pdm_retention_purge_runs_total`, by status.
static PURGE_RUNS: LazyLock<Family<1, Counter>> = LazyLock::new(|| {
    Family::new(
        "pdm_retention_purge_runs_total",
        "Retention purge runs finished, by status.",
        ["status"],
    )
});

/// Adds the retention service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register(&*PURGE_RUNS);
}

/// Counts a finished purge run (or retry of one).
pub fn purge_run(status: PurgeRunStatus) {
    PURGE_RUNS.with([status.label()], |c| c.add(1));
}
