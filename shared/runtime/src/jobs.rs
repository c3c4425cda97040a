//! A service's background work, supervised: consent's ledger follower, telemetry's consent
//! gate and row deleter, retention's scheduler, rights' worker. Each job runs until the
//! service stops. One that ends before (it returned, or panicked) is logged and counted,
//! then, as its [`OnFailure`] says, started again after a doubling backoff or reported, so
//! the service's health turns `NOT_SERVING` (a dead follower must not leave a replica
//! answering from a stale cache). At shutdown every job sees the stop and is awaited
//! within the grace period.

use std::{
    future::Future,
    sync::{Arc, LazyLock},
    time::Duration,
};

use futures_util::FutureExt as _;
use pdm_metrics::{Counter, Family};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What happens when a job ends before the service stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Start it again after a backoff (1 s, doubling to 1 min): for jobs that pick up
    /// where the stored state says.
    Restart,
    /// Turn the service `NOT_SERVING` until it is restarted: for jobs whose loss would
    /// make the service answer wrongly.
    StopServing,
}

/// The first backoff before a job is started again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// `pdm_background_job_failures_total`: jobs that ended before their service stopped.
static FAILURES: LazyLock<Family<2, Counter>> = LazyLock::new(|| {
    Family::new(
        "pdm_background_job_failures_total",
        "Background jobs that ended before their service stopped (returned or panicked), by service and job.",
        ["service", "job"],
    )
});

/// The supervised jobs of one service. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Jobs {
    service: &'static str,
    tracker: TaskTracker,
    stop: CancellationToken,
    failed: Arc<watch::Sender<Option<&'static str>>>,
}

impl Jobs {
    /// Jobs of `service` that stop when `stop` is cancelled.
    pub fn new(service: &'static str, stop: CancellationToken) -> Self {
        pdm_metrics::register(&*FAILURES);
        Self {
            service,
            tracker: TaskTracker::new(),
            stop,
            failed: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Cancelled when the service starts to stop: every job returns when it sees it.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `job` until the service stops; `job` is called again for each restart, with
    /// the stop token.
    pub fn spawn<F, Fut>(&self, name: &'static str, on_failure: OnFailure, mut job: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let failed = self.failed.clone();
        let service = self.service;
        self.tracker.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let outcome = std::panic::AssertUnwindSafe(job(stop.clone()))
                    .catch_unwind()
                    .await;
                if stop.is_cancelled() {
                    return;
                }
                let how = if outcome.is_err() {
                    "panicked"
                } else {
                    "returned"
                };
                FAILURES.with([service, name], |c| c.add(1));
                match on_failure {
                    OnFailure::StopServing => {
                        tracing::error!(
                            service,
                            job = name,
                            how,
                            "background job ended; the service stops serving until it is restarted"
                        );
                        failed.send_replace(Some(name));
                        return;
                    }
                    OnFailure::Restart => {
                        tracing::error!(
                            service,
                            job = name,
                            how,
                            backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            "background job ended; starting it again"
                        );
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// The job whose end stopped the service serving, once one has.
    pub fn failed(&self) -> watch::Receiver<Option<&'static str>> {
        self.failed.subscribe()
    }

    /// Stops the jobs and waits for them, at most `grace`; false when some were still
    /// running then (they are left to the runtime's end).
    pub async fn drain(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_job_that_ends_is_started_again_after_a_backoff() {
        let jobs = Jobs::new("test", CancellationToken::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        jobs.spawn("flaky", OnFailure::Restart, move |stop| {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run dies");
                }
                stop.cancelled().await;
            }
        });
        // (Waits for the second run rather than a fixed time: a loaded machine may be slow
        // to schedule it, and the restart is what is tested.)
        let deadline = tokio::time::Instant::now() + FIRST_BACKOFF + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(*jobs.failed().borrow(), None);
        assert!(jobs.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_job_whose_end_stops_the_service_is_reported() {
        let jobs = Jobs::new("test", CancellationToken::new());
        let mut failed = jobs.failed();
        jobs.spawn("follower", OnFailure::StopServing, |_stop| async {});
        failed.changed().await.expect("reported");
        assert_eq!(*failed.borrow(), Some("follower"));
    }

    #[tokio::test]
    async fn draining_stops_every_job_and_waits_for_it() {
        let jobs = Jobs::new("test", CancellationToken::new());
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let finished = finished.clone();
            jobs.spawn("busy", OnFailure::Restart, move |stop| {
                let finished = finished.clone();
                async move {
                    stop.cancelled().await;
                    // Finishing its work in flight after the stop.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        assert!(jobs.drain(Duration::from_secs(5)).await);
        assert_eq!(finished.load(Ordering::SeqCst), 3);
        assert_eq!(*jobs.failed().borrow(), None, "a stop is no failure");
    }

    #[tokio::test]
    async fn a_job_that_ignores_the_stop_is_given_up_after_the_grace_period() {
        let jobs = Jobs::new("test", CancellationToken::new());
        jobs.spawn("stuck", OnFailure::Restart, |_stop| std::future::pending());
        assert!(!jobs.drain(Duration::from_millis(50)).await);
    }
}
