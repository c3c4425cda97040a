//! Purge runs: take the lease, compute each policy's cutoff from the clock, ask every
//! data-holding service to `PurgeExpired` in parallel with the holds in force, record
//! what each answered, and give the lease back.
//!
//! A run is carried out on a task of its own, so it finishes (and its results are
//! recorded) even when the caller that started it goes away; the caller follows it
//! through a channel of [`Progress`] messages.

pub mod scheduler;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use pdm_access_trail::Trail;
use pdm_proto::{
    retention::v1::RunStatus,
    subject::v1::{
        LegalHold, PurgeExpiredRequest, PurgeRule, RetentionTrigger,
        subject_data_service_client::SubjectDataServiceClient,
    },
};
use pdm_runtime::{SharedClock, client::TracedChannel, convert::timestamp};
use tokio::{sync::mpsc, task::JoinSet};
use tracing::Instrument;

use crate::{
    domain::run::{PurgeRunStatus, metric_status, status},
    error::{Result, RetentionError},
    metrics,
    store::{
        CategoryCount, RuleRecord, RunWithResults, ServiceOutcome, Store,
        entities::{purge_run, service_result},
    },
};

/// A SubjectData client.
pub type SubjectDataClient = SubjectDataServiceClient<TracedChannel>;

/// A data-holding service a run asks.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name in `retention.services`.
    pub name: String,
    /// Its SubjectData client.
    pub client: SubjectDataClient,
}

/// One step of a run: a service finished (absent in the last message), and the run as it
/// stands.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The service that just finished.
    pub service: Option<service_result::Model>,
    /// Services finished so far.
    pub done: usize,
    /// Services in this attempt.
    pub total: usize,
    /// The run.
    pub run: RunWithResults,
}

/// Progress messages, ending with the finished run (or an error).
pub type ProgressReceiver = mpsc::Receiver<Result<Progress>>;

/// Starts and retries purge runs.
#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    targets: Vec<Target>,
    lease: chrono::Duration,
    call_timeout: Duration,
    /// This replica, in lease holder names.
    replica: String,
    /// Retention's own access trail: every run applies its rule to it too.
    own_trail: Arc<OnceLock<Trail>>,
}

/// What an attempt asks, of whom.
struct Attempt {
    run_id: String,
    holder: String,
    targets: Vec<(String, Option<SubjectDataClient>)>,
    request: PurgeExpiredRequest,
}

impl Runner {
    /// A runner asking `targets`.
    pub fn new(
        store: Store,
        clock: SharedClock,
        targets: Vec<Target>,
        lease: chrono::Duration,
        call_timeout: Duration,
        own_trail: Arc<OnceLock<Trail>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                targets,
                lease,
                call_timeout,
                replica: uuid::Uuid::now_v7().to_string(),
                own_trail,
            }),
        }
    }

    /// Starts a run now; `LeaseHeld` when another run is in progress.
    pub async fn start(&self, dry_run: bool, triggered_by: &str) -> Result<ProgressReceiver> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let run_id = uuid::Uuid::now_v7().to_string();
        let holder = self.acquire(&run_id, now).await?;
        let prepared = async {
            self.recover(now).await?;
            let (rules, holds) = self.rules_and_holds(now).await?;
            let names: Vec<String> = inner.targets.iter().map(|t| t.name.clone()).collect();
            let run = inner
                .store
                .create_run(
                    purge_run::Model {
                        run_id: run_id.clone(),
                        dry_run,
                        status: RunStatus::Running.as_str_name().to_owned(),
                        as_of: now,
                        started_at: now,
                        finished_at: None,
                        triggered_by: triggered_by.to_owned(),
                        rules: to_json(&rules),
                        hold_ids: to_json(&hold_ids(&holds)),
                    },
                    &names,
                )
                .await?;
            tracing::info!(
                run_id = %run_id,
                dry_run,
                triggered_by,
                services = names.len(),
                rules = rules.len(),
                holds = holds.len(),
                "purge run started"
            );
            Ok::<_, RetentionError>(Attempt {
                run_id: run.run.run_id.clone(),
                holder: holder.clone(),
                targets: inner
                    .targets
                    .iter()
                    .map(|t| (t.name.clone(), Some(t.client.clone())))
                    .collect(),
                request: request(&run.run.run_id, &rules, holds, dry_run),
            })
        }
        .await;
        self.launch(prepared, &holder).await
    }

    /// Asks again the services that did not answer in a run. A complete run is returned
    /// as it is; `LeaseHeld` when another run is in progress.
    pub async fn retry(&self, run_id: &str) -> Result<ProgressReceiver> {
        let inner = &self.inner;
        let existing = inner
            .store
            .run(run_id)
            .await?
            .ok_or(RetentionError::NotFound("run"))?;
        if existing.run.status == RunStatus::Completed.as_str_name() {
            return Ok(finished(existing));
        }
        let now = inner.clock.now();
        let holder = self.acquire(run_id, now).await?;
        let prepared = async {
            self.recover(now).await?;
            let run = inner
                .store
                .run(run_id)
                .await?
                .ok_or(RetentionError::NotFound("run"))?;
            let missing: Vec<String> = run
                .services
                .iter()
                .filter(|s| !s.ok)
                .map(|s| s.service.clone())
                .collect();
            if missing.is_empty() {
                return Ok(None);
            }
            // The run's own time, with the policies and holds in force now: a hold placed
            // since the first attempt is respected.
            let (rules, holds) = self.rules_and_holds(run.run.as_of).await?;
            inner
                .store
                .restart_run(run_id, &rules, &hold_ids(&holds))
                .await?;
            tracing::info!(run_id, services = missing.len(), "purge run retried");
            let targets = missing
                .into_iter()
                .map(|name| {
                    let client = inner
                        .targets
                        .iter()
                        .find(|t| t.name == name)
                        .map(|t| t.client.clone());
                    (name, client)
                })
                .collect();
            Ok(Some(Attempt {
                run_id: run_id.to_owned(),
                holder: holder.clone(),
                targets,
                request: request(run_id, &rules, holds, run.run.dry_run),
            }))
        }
        .await;
        match prepared {
            Ok(Some(attempt)) => self.launch(Ok(attempt), &holder).await,
            Ok(None) => {
                // Completed meanwhile by another retry.
                self.release(&holder).await;
                let run = inner
                    .store
                    .run(run_id)
                    .await?
                    .ok_or(RetentionError::NotFound("run"))?;
                Ok(finished(run))
            }
            Err(e) => {
                self.release(&holder).await;
                Err(e)
            }
        }
    }

    async fn acquire(&self, run_id: &str, now: DateTime<Utc>) -> Result<String> {
        let holder = format!("{}/{run_id}", self.inner.replica);
        let until = now + self.inner.lease;
        if self
            .inner
            .store
            .acquire_lease(&holder, run_id, now, until)
            .await?
        {
            Ok(holder)
        } else {
            tracing::info!(run_id, "purge lease held by another run");
            Err(RetentionError::LeaseHeld)
        }
    }

    /// Renews `holder`'s lease every third of its length; returns only when it is lost
    /// (another run took it after it expired), which stops the run: its calls are
    /// dropped and it stays RUNNING, to be recovered as partial by the next run.
    async fn keep_lease(&self, holder: &str) -> RetentionError {
        let inner = &self.inner;
        let every = inner
            .lease
            .to_std()
            .map_or(Duration::from_secs(1), |lease| lease / 3);
        loop {
            tokio::time::sleep(every).await;
            match inner
                .store
                .renew_lease(holder, inner.clock.now() + inner.lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("purge lease lost to another run; this run stops");
                    return RetentionError::LeaseHeld;
                }
                // The lease still runs until it expires; the next renewal may succeed.
                Err(e) => tracing::warn!(error = %e, "renewing the purge lease failed"),
            }
        }
    }

    async fn release(&self, holder: &str) {
        if let Err(e) = self.inner.store.release_lease(holder).await {
            tracing::warn!(error = %e, "releasing the purge lease failed; it expires on its own");
        }
    }

    /// Runs a holder left RUNNING when it died become PARTIAL (to be retried).
    async fn recover(&self, now: DateTime<Utc>) -> Result<()> {
        for run_id in self.inner.store.recover_interrupted(now).await? {
            tracing::warn!(run_id = %run_id, "purge run was interrupted; marked partial");
        }
        Ok(())
    }

    /// The rules of the policies in force at `as_of`, and the active holds.
    async fn rules_and_holds(
        &self,
        as_of: DateTime<Utc>,
    ) -> Result<(Vec<RuleRecord>, Vec<LegalHold>)> {
        let store = &self.inner.store;
        let rules = store
            .policies()
            .await?
            .iter()
            .filter_map(|row| {
                let policy = crate::store::to_policy(row);
                let cutoff = policy.cutoff(as_of)?;
                Some(RuleRecord {
                    category: policy.category,
                    trigger: policy.trigger.as_str_name().to_owned(),
                    cutoff,
                })
            })
            .collect();
        let holds = store
            .holds(false, None)
            .await?
            .into_iter()
            .map(|h| LegalHold {
                hold_id: h.hold_id,
                subject_id: h.subject_id,
                category: h.category,
            })
            .collect();
        Ok((rules, holds))
    }

    /// Carries the attempt out on a task of its own, or gives the lease back when it
    /// could not be prepared.
    async fn launch(&self, prepared: Result<Attempt>, holder: &str) -> Result<ProgressReceiver> {
        let attempt = match prepared {
            Ok(attempt) => attempt,
            Err(e) => {
                self.release(holder).await;
                return Err(e);
            }
        };
        // Room for every message: a caller that stops reading never slows the run.
        let (tx, rx) = mpsc::channel(attempt.targets.len() + 2);
        let runner = self.clone();
        // The run continues the trace of the call that started it (RunPurge, RetryPurge);
        // a scheduled run is a trace of its own.
        let span = tracing::info_span!(
            "retention.purge",
            otel.name = "retention.purge",
            run_id = %attempt.run_id,
        );
        tokio::spawn(async move {
            let holder = attempt.holder.clone();
            let run_id = attempt.run_id.clone();
            // The lease is renewed while the run lasts: a run longer than the lease (a slow
            // database, a large own trail) would otherwise let a second run start beside it.
            let outcome = tokio::select! {
                outcome = runner.execute(attempt, &tx) => outcome,
                lost = runner.keep_lease(&holder) => Err(lost),
            };
            // The lease goes back before the caller hears the run ended, so it can start
            // the next one at once.
            runner.release(&holder).await;
            match outcome {
                Ok(last) => {
                    let _ = tx.send(Ok(last)).await;
                }
                Err(e) => {
                    tracing::warn!(run_id = %run_id, error = %e, "purge run failed; it will be recovered as partial");
                    metrics::purge_run(PurgeRunStatus::Failed);
                    let _ = tx.send(Err(e)).await;
                }
            }
        }.instrument(span));
        Ok(rx)
    }

    async fn execute(
        &self,
        attempt: Attempt,
        tx: &mpsc::Sender<Result<Progress>>,
    ) -> Result<Progress> {
        let inner = &self.inner;
        let run_id = attempt.run_id;
        let total = attempt.targets.len();
        let mut calls = JoinSet::new();
        for (name, client) in attempt.targets {
            calls.spawn(
                call(name, client, attempt.request.clone(), inner.call_timeout).in_current_span(),
            );
        }
        let mut done = 0;
        while let Some(joined) = calls.join_next().await {
            let outcome = joined.map_err(|_| RetentionError::Internal("purge call task failed"))?;
            inner.store.record_outcome(&run_id, &outcome).await?;
            done += 1;
            log_outcome(&run_id, &outcome);
            let run = inner
                .store
                .run(&run_id)
                .await?
                .ok_or(RetentionError::Internal("run vanished"))?;
            let service = run
                .services
                .iter()
                .find(|s| s.service == outcome.service)
                .cloned();
            // The caller may have gone: the run goes on regardless.
            let _ = tx
                .send(Ok(Progress {
                    service,
                    done,
                    total,
                    run,
                }))
                .await;
        }
        // Retention's own trail (audit.access) answers to the same rule and holds; it is no
        // target of the run, so a failure here is logged and retried by the next run.
        if let Some(trail) = inner.own_trail.get() {
            match trail
                .purge(&attempt.request, "retention", inner.clock.now())
                .await
            {
                Ok(Some(done)) => tracing::info!(
                    run_id = %run_id,
                    purged = done.purged,
                    held = done.held,
                    "retention's own access trail purged"
                ),
                Ok(None) => {}
                Err(status) => tracing::warn!(
                    run_id = %run_id,
                    code = ?status.code(),
                    "purging retention's own access trail failed; the next run tries again"
                ),
            }
        }
        let run = inner
            .store
            .run(&run_id)
            .await?
            .ok_or(RetentionError::Internal("run vanished"))?;
        let status = status(run.services.iter().map(|s| s.ok));
        inner
            .store
            .finish_run(&run_id, status, inner.clock.now())
            .await?;
        tracing::info!(run_id = %run_id, status = status.as_str_name(), "purge run finished");
        let run = inner
            .store
            .run(&run_id)
            .await?
            .ok_or(RetentionError::Internal("run vanished"))?;
        metrics::purge_run(metric_status(status));
        Ok(Progress {
            service: None,
            done,
            total,
            run,
        })
    }
}

/// A channel holding only the final message of a run that needs nothing more.
fn finished(run: RunWithResults) -> ProgressReceiver {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Ok(Progress {
        service: None,
        done: 0,
        total: 0,
        run,
    }));
    rx
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn hold_ids(holds: &[LegalHold]) -> Vec<String> {
    holds.iter().map(|h| h.hold_id.clone()).collect()
}

fn request(
    run_id: &str,
    rules: &[RuleRecord],
    holds: Vec<LegalHold>,
    dry_run: bool,
) -> PurgeExpiredRequest {
    PurgeExpiredRequest {
        run_id: run_id.to_owned(),
        rules: rules
            .iter()
            .map(|r| PurgeRule {
                category: r.category.clone(),
                trigger: RetentionTrigger::from_str_name(&r.trigger).unwrap_or_default() as i32,
                cutoff: Some(timestamp(r.cutoff)),
            })
            .collect(),
        holds,
        dry_run,
    }
}

/// One service's `PurgeExpired`, bounded by `timeout`. A failure is described by its
/// code and message, which services keep free of personal data.
async fn call(
    name: String,
    client: Option<SubjectDataClient>,
    request: PurgeExpiredRequest,
    timeout: Duration,
) -> ServiceOutcome {
    let started = std::time::Instant::now();
    let result = match client {
        None => Err("not in retention.services any more".to_owned()),
        Some(mut client) => {
            let answer = call_within(&mut client, &request, timeout).await;
            match answer {
                Ok(answer) => Ok(answer
                    .into_inner()
                    .results
                    .into_iter()
                    .map(|r| CategoryCount {
                        category: r.category,
                        purged: r.purged,
                        held: r.held,
                        hold_ids: r.hold_ids,
                    })
                    .collect()),
                Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
            }
        }
    };
    ServiceOutcome {
        service: name,
        result,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Tries a call again after UNAVAILABLE (a connection reset or refused before an answer:
/// a restarted peer, a proxy that dropped the connection) while the call's time lasts.
/// PurgeExpired is safe to repeat: a second pass deletes what is still expired, nothing
/// more.
const UNAVAILABLE_TRIES: u32 = 3;

/// One PurgeExpired, bounded by `timeout` in all (tries included).
async fn call_within(
    client: &mut SubjectDataClient,
    request: &PurgeExpiredRequest,
    timeout: Duration,
) -> Result<tonic::Response<pdm_proto::subject::v1::PurgeExpiredResponse>, tonic::Status> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tries = 0;
    loop {
        tries += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(left);
        // Bounded here too: the channel's own timeout does not cover every stage of a
        // connection (a peer that accepts TCP and never completes TLS).
        let answer = tokio::time::timeout(left, client.purge_expired(call))
            .await
            .unwrap_or_else(|_| {
                Err(tonic::Status::deadline_exceeded(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            });
        match answer {
            Err(status)
                if status.code() == tonic::Code::Unavailable && tries < UNAVAILABLE_TRIES =>
            {
                let pause = Duration::from_millis(100 * u64::from(tries));
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(status);
                }
                tokio::time::sleep(pause).await;
            }
            answer => return answer,
        }
    }
}

fn log_outcome(run_id: &str, outcome: &ServiceOutcome) {
    match &outcome.result {
        Ok(counts) => {
            let purged: u64 = counts.iter().map(|c| c.purged).sum();
            let held: u64 = counts.iter().map(|c| c.held).sum();
            tracing::info!(
                run_id,
                service = %outcome.service,
                purged,
                held,
                duration_ms = outcome.duration_ms,
                "service purged"
            );
        }
        Err(error) => tracing::warn!(
            run_id,
            service = %outcome.service,
            error = %error,
            duration_ms = outcome.duration_ms,
            "service did not answer the purge; the run is partial"
        ),
    }
}
