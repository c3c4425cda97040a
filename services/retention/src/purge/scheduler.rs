//! The purge schedule: on every tick, the clock says whether a run is due (the interval
//! has passed since the newest real run) or a partial run is to be retried (the retry
//! delay has passed since its last attempt). The database, not this replica's memory,
//! holds the runs, and the lease decides which replica carries a run out, so every
//! replica can run the scheduler.

use std::time::Duration;

use pdm_proto::retention::v1::RunStatus;
use pdm_runtime::SharedClock;
use tokio_util::sync::CancellationToken;

use super::Runner;
use crate::{
    error::{Result, RetentionError},
    store::Store,
};

/// When runs happen.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between runs.
    pub interval: chrono::Duration,
    /// Before a partial run is retried.
    pub retry_after: chrono::Duration,
    /// How often the clock is looked at.
    pub tick: Duration,
}

/// Runs the schedule until `stop` is cancelled. The first look is one tick after start.
pub async fn run(
    runner: Runner,
    store: Store,
    clock: SharedClock,
    schedule: Schedule,
    stop: CancellationToken,
) {
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + schedule.tick, schedule.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let step = tokio::select! {
            () = stop.cancelled() => return,
            step = once(&runner, &store, &clock, &schedule) => step,
        };
        if let Err(e) = step {
            tracing::warn!(error = %e, "scheduled purge failed; trying again at the next tick");
        }
    }
}

/// What is due now: a new run, a retry, or nothing.
async fn once(
    runner: &Runner,
    store: &Store,
    clock: &SharedClock,
    schedule: &Schedule,
) -> Result<()> {
    let now = clock.now();
    let latest = store.latest_run(false).await?;
    let started = match &latest {
        None => runner.start(false, "schedule").await,
        Some(run) if run.as_of + schedule.interval <= now => runner.start(false, "schedule").await,
        Some(run)
            if run.status == RunStatus::Partial.as_str_name()
                && run
                    .finished_at
                    .is_some_and(|at| at + schedule.retry_after <= now) =>
        {
            runner.retry(&run.run_id).await
        }
        Some(_) => return Ok(()),
    };
    let mut progress = match started {
        Ok(progress) => progress,
        // Another replica (or an operator) is running one: nothing to do here.
        Err(RetentionError::LeaseHeld) => return Ok(()),
        Err(e) => return Err(e),
    };
    while let Some(step) = progress.recv().await {
        step?;
    }
    Ok(())
}
