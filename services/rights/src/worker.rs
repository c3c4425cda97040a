//! The durable fan-out: a worker claims due tasks from the database, runs them in parallel
//! against the services, records each result, retries failures with backoff, and closes a
//! request when all its tasks are done. Every call is idempotent per request id, so a task
//! whose runner crashed is simply run again (its lease runs out, or it is reclaimed at
//! start).

use pdm_proto::audit::v1::ListAccessesRequest;
use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use pdm_crypto::Keyring;
use pdm_proto::{
    consent::v1::{GetConsentsRequest, RecordObjectionRequest, SetDoNotSellRequest, Source},
    identity::v1::UpdateProfileRequest,
    retention::v1::{
        GetScheduleRequest, ListLegalHoldsRequest, ListPoliciesRequest, RecordTriggerRequest,
    },
    rights::v1::RequestKind,
    subject::v1::{
        EraseSubjectRequest, ExportSubjectRequest, RestrictSubjectRequest, RetentionTrigger,
    },
    transfers::v1::ListRecipientsRequest,
};
use pdm_runtime::SharedClock;
use prost::Message;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    domain::{answers, claims, mailbox, plan::Action, proof},
    error::{Result, RightsError},
    outbox::Outbox,
    package::{AccessLine, ChunkWriter, ExportSummary, MAX_ACCESSES, record_json},
    peers::Peers,
    recorder::{Recorded, Recorder},
    sealed,
    settings::RightsSettings,
    store::{
        KeyOf, RequestStatus, Store, TaskEnd, TaskStatus, Told,
        entities::{outbox, request, task},
    },
};

/// The name a rights replica claims tasks under: its host (the pod's name in Kubernetes)
/// and the port it serves on. Stable across a restart of the same replica, so a restarted
/// replica takes back its own tasks at once; distinct between replicas, so it never takes
/// another's live task.
pub fn replica_id(port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{port}")
}

/// A request's key, read once for the tasks of one claim that need it.
type KeyCell = Arc<tokio::sync::OnceCell<pdm_crypto::DataKey>>;

/// A claimed task with what its run needs of its request.
struct Claim {
    task: task::Model,
    request: Arc<request::Model>,
    key: KeyCell,
}

/// What a failed call means for the task.
enum Failure {
    /// Try again later.
    Retry(String),
    /// The service refused for good.
    Reject(String),
}

fn classify(status: &tonic::Status) -> Failure {
    let text = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::PermissionDenied
        | Code::AlreadyExists => Failure::Reject(text),
        _ => Failure::Retry(text),
    }
}

/// Runs the fan-out.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Requests and tasks.
    pub store: Store,
    /// The services tasks call.
    pub peers: Peers,
    /// Wraps request keys.
    pub keyring: Keyring,
    /// Time.
    pub clock: SharedClock,
    /// Settings.
    pub settings: RightsSettings,
    /// Wakes the worker when tasks are stored.
    pub wake: Arc<Notify>,
    /// Request ids that changed (for WatchRequest).
    pub changes: broadcast::Sender<String>,
    /// Messages to subjects.
    pub outbox: Outbox,
    /// Rights' own access trail (set once the database is ready), purged by
    /// [`Worker::forget_past_proof`] under the `audit.access` rule.
    pub trail: Arc<std::sync::OnceLock<pdm_access_trail::Trail>>,
    /// When the trail is purged next (at most hourly: a purge takes a write lock).
    pub next_trail_purge: Arc<std::sync::Mutex<DateTime<Utc>>>,
    /// This replica's name on the tasks it claims ([`replica_id`]).
    pub owner: Arc<str>,
}

impl Worker {
    /// Claims and runs tasks until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        // Tasks this replica was running when it stopped (or was killed) are taken up again
        // now rather than when their lease runs out; other replicas' are left to them.
        match self
            .store
            .reclaim_running(self.clock.now(), &self.owner)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                tasks = n,
                "taking up tasks left running by a previous start"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reclaiming running tasks failed; their leases will expire")
            }
        }
        self.close_finished().await;
        self.shred_erased(None).await;
        self.forget_past_proof().await;
        let parallelism = self.settings.parallelism.max(1);
        let permits = Arc::new(Semaphore::new(parallelism));
        // Stops once this loop and every task it started are done with it.
        let recorder = Recorder::start(self.store.clone(), self.clock.clone());
        let mut housekeeping = tokio::time::interval(Duration::from_secs(30));
        let mut running = tokio::task::JoinSet::new();
        // Messages go out on a loop of their own, so a slow or unreachable relay never
        // holds up the fan-out; it stops with the worker, after its message in flight.
        let mut sender = self.spawn_sender(&stop);
        // A task's end frees a permit, worth a claim only when the last claim left due
        // tasks behind (it took all it asked for): an empty claim is a statement too, and
        // one after every end was a claim per task. New tasks (`wake`) and time passing
        // (retries coming due, other replicas' leases lapsing) are always worth one; a
        // full worker waits for a few permits to claim them at once.
        let ended = Arc::new(Notify::new());
        let mut more_due = true;
        loop {
            while running.try_join_next().is_some() {}
            let now = self.clock.now();
            let free = permits.available_permits();
            if more_due && claims::worth_a_claim(free, parallelism) {
                match self
                    .store
                    .claim_due(
                        now,
                        u64::try_from(free).unwrap_or(1),
                        self.lease(),
                        &self.owner,
                    )
                    .await
                {
                    Ok(claimed) => {
                        more_due = claimed.len() >= free;
                        for claim in self.with_requests(claimed).await {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                return;
                            };
                            let worker = self.clone();
                            let recorder = recorder.clone();
                            let ended = ended.clone();
                            running.spawn(async move {
                                worker.execute(claim, &recorder).await;
                                drop(permit);
                                ended.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming tasks failed; will retry"),
                }
            }
            if sender.is_finished() && !stop.is_cancelled() {
                tracing::error!("the message sender stopped; starting it again");
                sender = self.spawn_sender(&stop);
            }
            tokio::select! {
                () = stop.cancelled() => {
                    // A graceful stop lets the tasks in flight finish and record their
                    // results, so the next start has nothing to redo.
                    while running.join_next().await.is_some() {}
                    if let Err(e) = sender.await {
                        tracing::warn!(error = %e, "the message sender failed");
                    }
                    return;
                }
                () = self.wake.notified() => more_due = true,
                () = ended.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => more_due = true,
                _ = housekeeping.tick() => {
                    if let Err(e) = self.store.delete_expired_packages(self.clock.now()).await {
                        tracing::warn!(error = %e, "expiring packages failed");
                    }
                    self.close_finished().await;
                    self.shred_erased(None).await;
                    self.forget_past_proof().await;
                }
            }
        }
    }

    /// Forgets the personal details of requests past their proof period: the retention
    /// service's `rights.request` policy is the one source of the period (no copy here to
    /// drift), read at every housekeeping. Without retention (`rights.retention = false`)
    /// or without that policy nothing is forgotten; neither is anything of a subject under
    /// a legal hold. Closed concerns follow the same period. A failure is retried next time.
    async fn forget_past_proof(&self) {
        if !self.settings.retention {
            return;
        }
        let mut retention = self.peers.retention.clone();
        let policies = match retention.list_policies(ListPoliciesRequest {}).await {
            Ok(answer) => answer.into_inner().policies,
            Err(status) => {
                tracing::warn!(code = ?status.code(), "reading the proof period from retention failed; will retry");
                return;
            }
        };
        let now = self.clock.now();
        let cutoff_of = |category: &str| {
            let period = policies
                .iter()
                .find(|p| p.category == category)
                .and_then(|p| p.period)?;
            let unsigned = |n: i32| u32::try_from(n).unwrap_or(0);
            proof::ProofPeriod {
                years: unsigned(period.years),
                months: unsigned(period.months),
                days: unsigned(period.days),
            }
            .cutoff(now)
        };
        let trail_cutoff = cutoff_of(pdm_access_trail::retention::CATEGORY);
        let Some(cutoff) = cutoff_of(proof::CATEGORY) else {
            return;
        };
        // Legal holds in force keep their subjects' records: without knowing them, nothing
        // is forgotten this time.
        let holds = match retention
            .list_legal_holds(ListLegalHoldsRequest::default())
            .await
        {
            Ok(answer) => answer.into_inner().holds,
            Err(status) => {
                tracing::warn!(code = ?status.code(), "reading legal holds from retention failed; nothing forgotten, will retry");
                return;
            }
        };
        let held = proof::Held::from_holds(
            holds
                .iter()
                .filter(|h| h.released_at.is_none())
                .map(|h| (h.subject_id.as_str(), h.category.as_str())),
        );
        match self
            .store
            .forget_expired(cutoff, &held, &self.keyring, now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(requests = n, "requests past their proof period forgotten"),
            Err(e) => {
                tracing::warn!(error = %e, "forgetting requests past their proof period failed; will retry")
            }
        }
        match self.store.forget_closed_concerns(cutoff, &held, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(concerns = n, "concerns past their proof period forgotten"),
            Err(e) => {
                tracing::warn!(error = %e, "forgetting concerns past their proof period failed; will retry")
            }
        }
        if let Some(trail_cutoff) = trail_cutoff {
            self.purge_own_trail(trail_cutoff, holds, now).await;
        }
    }

    /// Applies the `audit.access` rule to rights' own access trail (rights serves no
    /// `PurgeExpired`, so no purge run reaches it): at most once an hour.
    async fn purge_own_trail(
        &self,
        cutoff: DateTime<Utc>,
        holds: Vec<pdm_proto::retention::v1::LegalHold>,
        now: DateTime<Utc>,
    ) {
        let Some(trail) = self.trail.get() else {
            return;
        };
        {
            let Ok(mut next) = self.next_trail_purge.lock() else {
                return;
            };
            if now < *next {
                return;
            }
            *next = now + chrono::Duration::hours(1);
        }
        let request = pdm_proto::subject::v1::PurgeExpiredRequest {
            run_id: format!("rights-housekeeping-{}", now.timestamp()),
            rules: vec![pdm_proto::subject::v1::PurgeRule {
                category: pdm_access_trail::retention::CATEGORY.to_owned(),
                trigger: RetentionTrigger::EventTime as i32,
                cutoff: Some(pdm_runtime::convert::timestamp(cutoff)),
            }],
            holds: holds
                .into_iter()
                .filter(|h| h.released_at.is_none())
                .map(|h| pdm_proto::subject::v1::LegalHold {
                    hold_id: h.hold_id,
                    subject_id: h.subject_id,
                    category: h.category,
                })
                .collect(),
            dry_run: false,
        };
        match trail.purge(&request, "rights", now).await {
            Ok(Some(done)) if done.purged > 0 || done.held > 0 => {
                tracing::info!(
                    purged = done.purged,
                    held = done.held,
                    "rights' own access trail purged"
                );
            }
            Ok(_) => {}
            Err(status) => {
                tracing::warn!(code = ?status.code(), "purging rights' own access trail failed; will retry");
                if let Ok(mut next) = self.next_trail_purge.lock() {
                    *next = now;
                }
            }
        }
    }

    /// Starts the outbox's sending loop (see [`Outbox::run`]).
    fn spawn_sender(&self, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.outbox.clone().run(
            self.clock.clone(),
            self.settings.retry(),
            stop.clone(),
        ))
    }

    /// Pairs each claimed task with its request, read once for the whole claim (a request's
    /// tasks are usually claimed together), and with a key cell its tasks share: the
    /// request's key is read at most once per claim, by the first task that needs it.
    async fn with_requests(&self, claimed: Vec<task::Model>) -> Vec<Claim> {
        if claimed.is_empty() {
            return Vec::new();
        }
        let requests = match self
            .store
            .requests(claimed.iter().map(|t| t.request_id.as_str()))
            .await
        {
            Ok(requests) => requests,
            Err(e) => {
                // Their leases run out and they are claimed again.
                tracing::warn!(error = %e, "reading the claimed tasks' requests failed; will retry");
                return Vec::new();
            }
        };
        let shared: HashMap<String, (Arc<request::Model>, KeyCell)> = requests
            .into_iter()
            .map(|r| (r.request_id.clone(), (Arc::new(r), KeyCell::default())))
            .collect();
        claimed
            .into_iter()
            .filter_map(|task| match shared.get(&task.request_id) {
                Some((request, key)) => Some(Claim {
                    task,
                    request: request.clone(),
                    key: key.clone(),
                }),
                None => {
                    tracing::warn!(request_id = %task.request_id, "task of an unknown request");
                    None
                }
            })
            .collect()
    }

    /// Runs a claimed task and records its result; the recorder names the one end that
    /// leaves its request with nothing to run, which then closes the request (with the
    /// request's key when this claim already read it).
    async fn execute(&self, claim: Claim, recorder: &Recorder) {
        let request_id = claim.task.request_id.clone();
        let key = claim.key.clone();
        if self.run_and_record(claim, recorder).await
            && let Err(e) = self.close_done(&request_id, key.get().cloned()).await
        {
            tracing::warn!(error = %e, %request_id, "closing the request failed; will retry");
        }
    }

    /// Runs a claimed task and records its result: whether its end closes its request.
    /// False too when it was not recorded (the task runs again) or another replica's
    /// result counts.
    async fn run_and_record(&self, claim: Claim, recorder: &Recorder) -> bool {
        let Claim {
            task: t,
            request: req,
            key,
        } = claim;
        // Background work continues the trace of the call that submitted the request.
        let span = tracing::info_span!(
            "rights.task",
            otel.name = format!("rights.task {}/{}", t.service, t.action),
            request_id = %t.request_id,
            service = %t.service,
            action = %t.action,
            attempt = t.attempts,
        );
        if let Some(parent) = req.trace_parent.as_deref() {
            let _ = span.set_parent(pdm_runtime::propagation::from_traceparent(parent));
        }
        let Some(outcome) = self.perform_leased(&t, &req, &key, span).await else {
            return false;
        };
        let (status, result, error, next_attempt_at) = match outcome {
            Ok(result) => {
                tracing::info!(request_id = %t.request_id, service = %t.service, action = %t.action, "task done");
                (TaskStatus::Done, result, None, self.clock.now())
            }
            Err(Failure::Reject(error)) => {
                tracing::warn!(request_id = %t.request_id, service = %t.service, action = %t.action, %error, "task refused");
                (TaskStatus::Rejected, None, Some(error), self.clock.now())
            }
            Err(Failure::Retry(error)) => {
                let longest = i64::try_from(self.settings.max_backoff.as_secs())
                    .unwrap_or(i64::MAX)
                    .max(1);
                let backoff = (1i64 << t.attempts.clamp(0, 16)).min(longest);
                tracing::warn!(request_id = %t.request_id, service = %t.service, action = %t.action, attempt = t.attempts, backoff_secs = backoff, %error, "task failed; will retry");
                let due = self.clock.now() + chrono::Duration::seconds(backoff);
                (TaskStatus::Failed, None, Some(error), due)
            }
        };
        let (request_id, service, action) =
            (t.request_id.clone(), t.service.clone(), t.action.clone());
        let recorded = recorder
            .record(TaskEnd {
                task: t,
                status,
                result,
                error,
                next_attempt_at,
            })
            .await;
        match recorded {
            Ok(Recorded {
                stored: true,
                closes_request,
            }) => {
                let _ = self.changes.send(request_id);
                closes_request
            }
            Ok(Recorded { stored: false, .. }) => {
                tracing::warn!(%request_id, %service, %action, "another replica took the task over; its result counts");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a task result failed; the task will run again");
                false
            }
        }
    }

    /// How long a claim holds without a renewal (`rights.task_lease_ms`).
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.task_lease).unwrap_or(chrono::Duration::MAX)
    }

    /// Performs `t` while renewing its lease; None when the lease was lost (another
    /// replica took the task over after a renewal failed), then nothing is recorded here.
    async fn perform_leased(
        &self,
        t: &task::Model,
        req: &request::Model,
        key: &KeyCell,
        span: tracing::Span,
    ) -> Option<std::result::Result<Option<String>, Failure>> {
        let work = self.perform(t, req, key).instrument(span);
        tokio::pin!(work);
        // A claimed task is ours for `task_lease`: renewed every third of it.
        let mut renew = tokio::time::interval(self.settings.task_lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                outcome = &mut work => return Some(outcome),
                _ = renew.tick() => {
                    match self.store.renew_lease(t, self.clock.now() + self.lease()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(request_id = %t.request_id, service = %t.service, action = %t.action, "lost the lease of a running task; stopping it");
                            return None;
                        }
                        // The database is away: the lease may still hold; the finish will tell.
                        Err(e) => tracing::warn!(error = %e, "renewing a task's lease failed"),
                    }
                }
            }
        }
    }

    async fn perform(
        &self,
        t: &task::Model,
        req: &request::Model,
        key: &KeyCell,
    ) -> std::result::Result<Option<String>, Failure> {
        let subject = req.subject_id.clone().unwrap_or_default();
        let Some(action) = Action::parse(&t.action) else {
            return Err(Failure::Reject(format!("unknown action {}", t.action)));
        };
        let actor = format!("rights:{}", req.request_id);
        match action {
            Action::Export => self.export(t, req, key, &subject).await,
            Action::Erase => {
                let mut client = self.subject_data(&t.service)?;
                let receipt = client
                    .erase_subject(EraseSubjectRequest {
                        request_id: req.request_id.clone(),
                        subject_id: subject,
                    })
                    .await
                    .map_err(|s| classify(&s))?
                    .into_inner()
                    .receipt
                    .unwrap_or_default();
                Ok(Some(STANDARD.encode(receipt.encode_to_vec())))
            }
            Action::Restrict => {
                let mut client = self.subject_data(&t.service)?;
                client
                    .restrict_subject(RestrictSubjectRequest {
                        subject_id: subject,
                        restricted: true,
                        request_id: req.request_id.clone(),
                    })
                    .await
                    .map_err(|s| classify(&s))?;
                Ok(None)
            }
            Action::Object => {
                let details = self
                    .details(req)
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                self.peers
                    .consent
                    .clone()
                    .record_objection(RecordObjectionRequest {
                        subject_id: subject,
                        purpose: details.purpose.unwrap_or_default(),
                        withdraw: false,
                        source: Source::PrivacyRequest as i32,
                        actor,
                    })
                    .await
                    .map_err(|s| classify(&s))?;
                Ok(None)
            }
            Action::DoNotSell => {
                self.peers
                    .consent
                    .clone()
                    .set_do_not_sell(SetDoNotSellRequest {
                        subject_id: subject,
                        do_not_sell: true,
                        source: Source::PrivacyRequest as i32,
                        actor,
                    })
                    .await
                    .map_err(|s| classify(&s))?;
                Ok(None)
            }
            Action::Rectify => {
                let details = self
                    .details(req)
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                let mut update = UpdateProfileRequest {
                    subject_id: subject,
                    ..Default::default()
                };
                for (field, value) in details.rectifications {
                    match field.as_str() {
                        "first_name" => update.first_name = Some(value),
                        "last_name" => update.last_name = Some(value),
                        "email" => update.email = Some(value),
                        "phone" => update.phone = Some(value),
                        "birth_date" => update.birth_date = Some(value),
                        "region" => {
                            update.region = pdm_proto::common::v1::Region::from_str_name(&value)
                                .map(|r| r as i32);
                        }
                        _ => {}
                    }
                }
                self.peers
                    .identity
                    .clone()
                    .update_profile(update)
                    .await
                    .map_err(|s| classify(&s))?;
                Ok(None)
            }
            Action::Schedule => {
                let schedule = self
                    .peers
                    .retention
                    .clone()
                    .get_schedule(GetScheduleRequest {
                        subject_id: subject,
                    })
                    .await
                    .map_err(|s| classify(&s))?
                    .into_inner();
                let entries: Vec<serde_json::Value> = schedule
                    .entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "category": e.category,
                            "rule": e.rule,
                            "delete_after": e.delete_after.as_ref().and_then(pdm_runtime::convert::from_timestamp).map(|t| t.to_rfc3339()),
                            "held": !e.hold_ids.is_empty(),
                        })
                    })
                    .collect();
                Ok(Some(serde_json::Value::Array(entries).to_string()))
            }
            Action::Purposes => {
                let asked = self
                    .peers
                    .consent
                    .clone()
                    .get_consents(GetConsentsRequest {
                        subject_id: subject,
                    })
                    .await;
                // A subject consent does not know (erased, or never asked) consented to
                // nothing: that is an answer, not a refusal.
                let purposes = match asked {
                    Ok(consents) => consents.into_inner().purposes,
                    Err(status) if status.code() == Code::NotFound => Vec::new(),
                    Err(status) => return Err(classify(&status)),
                };
                serde_json::to_string(&answers::consented(&purposes))
                    .map(Some)
                    .map_err(|e| Failure::Retry(e.to_string()))
            }
            Action::Register => {
                let register = self
                    .peers
                    .transfers
                    .clone()
                    .list_recipients(ListRecipientsRequest::default())
                    .await
                    .map_err(|s| classify(&s))?
                    .into_inner();
                serde_json::to_string(&answers::standing(&register.recipients))
                    .map(Some)
                    .map_err(|e| Failure::Retry(e.to_string()))
            }
            Action::RecordClosure => {
                self.peers
                    .retention
                    .clone()
                    .record_trigger(RecordTriggerRequest {
                        subject_id: subject,
                        trigger: RetentionTrigger::AccountClosed as i32,
                        occurred_at: req.verified_at.map(pdm_runtime::convert::timestamp),
                    })
                    .await
                    .map_err(|s| classify(&s))?;
                Ok(None)
            }
        }
    }

    fn subject_data(
        &self,
        service: &str,
    ) -> std::result::Result<
        pdm_proto::subject::v1::subject_data_service_client::SubjectDataServiceClient<
            pdm_runtime::client::TracedChannel,
        >,
        Failure,
    > {
        self.peers
            .subject_data
            .get(service)
            .cloned()
            .ok_or_else(|| {
                Failure::Reject(format!(
                    "{service} is not a data-holding service of this mesh"
                ))
            })
    }

    async fn details(&self, req: &request::Model) -> Result<sealed::Details> {
        let key = self.store.key(KeyOf::Request(&req.request_id)).await?;
        Ok(sealed::open_details(&key, &req.details)?)
    }

    /// Streams a service's export into sealed chunks; the result is its summary.
    async fn export(
        &self,
        t: &task::Model,
        req: &request::Model,
        key: &KeyCell,
        subject: &str,
    ) -> std::result::Result<Option<String>, Failure> {
        let retry = |e: RightsError| Failure::Retry(e.to_string());
        let key = key
            .get_or_try_init(|| self.store.key(KeyOf::Request(&req.request_id)))
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?
            .clone();
        let mut client = self.subject_data(&t.service)?;
        let mut stream = client
            .export_subject(ExportSubjectRequest {
                subject_id: subject.to_owned(),
                request_id: req.request_id.clone(),
            })
            .await
            .map_err(|s| classify(&s))?
            .into_inner();
        // A previous attempt may have stored part of this export: start over. (The claim
        // counted this attempt: the first has nothing to clear.)
        if t.attempts > 1 {
            self.store
                .clear_chunks(&req.request_id, &t.service)
                .await
                .map_err(retry)?;
        }
        let mut writer = ChunkWriter::new(key);
        let mut summary = ExportSummary {
            service: t.service.clone(),
            ..ExportSummary::default()
        };
        let mut seq = 0i32;
        let idle = self.settings.export_idle;
        let stalled = || {
            Failure::Retry(format!(
                "{} sent nothing for {} ms",
                t.service,
                idle.as_millis()
            ))
        };
        while let Some(message) = tokio::time::timeout(idle, stream.message())
            .await
            .map_err(|_| stalled())?
            .map_err(|s| classify(&s))?
        {
            let Some(record) = message.record else {
                continue;
            };
            summary.add(&record);
            let line = record_json(&record);
            if let Some(chunk) = writer
                .push(&line)
                .map_err(|e| Failure::Retry(e.to_string()))?
            {
                self.store
                    .insert_chunk(&req.request_id, &t.service, seq, chunk)
                    .await
                    .map_err(retry)?;
                seq += 1;
            }
        }
        if let Some(chunk) = writer.flush().map_err(|e| Failure::Retry(e.to_string()))? {
            self.store
                .insert_chunk(&req.request_id, &t.service, seq, chunk)
                .await
                .map_err(retry)?;
        }
        self.accesses(&t.service, subject, &mut summary).await?;
        serde_json::to_string(&summary)
            .map(Some)
            .map_err(|e| Failure::Retry(e.to_string()))
    }

    /// Adds who accessed the subject's data in `service`, from its access trail.
    async fn accesses(
        &self,
        service: &str,
        subject: &str,
        summary: &mut ExportSummary,
    ) -> std::result::Result<(), Failure> {
        let Some(client) = self.peers.audit.get(service) else {
            return Ok(());
        };
        let mut client = client.clone();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_accesses(ListAccessesRequest {
                    subject_id: subject.to_owned(),
                    page_size: 1000,
                    page_token,
                })
                .await
                .map_err(|s| classify(&s))?
                .into_inner();
            for a in page.accesses {
                if summary.accesses.len() == MAX_ACCESSES {
                    summary.accesses_truncated = true;
                    return Ok(());
                }
                summary.accesses.push(AccessLine {
                    at: a
                        .at
                        .as_ref()
                        .and_then(pdm_runtime::convert::from_timestamp)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    caller: a.caller,
                    method: a.method,
                    purpose: a.purpose,
                    trace_id: a.trace_id,
                });
            }
            if page.next_page_token.is_empty() {
                return Ok(());
            }
            page_token = page.next_page_token;
        }
    }

    /// Closes the requests whose tasks all finished but which a crash left open.
    async fn close_finished(&self) {
        match self.store.finished_but_open().await {
            Ok(ids) => {
                for id in ids {
                    tracing::info!(request_id = %id, "closing a request whose tasks all finished before a stop");
                    if let Err(e) = self.finish_if_done(&id).await {
                        tracing::warn!(request_id = %id, error = %e, "closing a finished request failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for finished requests failed"),
        }
    }

    /// Closes the request when every task has finished.
    pub async fn finish_if_done(&self, request_id: &str) -> Result<()> {
        if self.store.unfinished_tasks(request_id).await? > 0 {
            return Ok(());
        }
        self.close_done(request_id, None).await
    }

    /// Closes a request whose tasks have all finished: denied if a service refused, else
    /// completed, with the message the subject is owed. `key` is the request's key when
    /// the caller holds it already.
    async fn close_done(&self, request_id: &str, key: Option<pdm_crypto::DataKey>) -> Result<()> {
        // A finished task never runs again: the count still holds for these rows.
        let tasks = self.store.tasks_of(request_id).await?;
        let Some(req) = self.store.request(request_id).await? else {
            return Err(RightsError::NotFound);
        };
        if req.status != RequestStatus::InProgress {
            return Ok(());
        }
        let now = self.clock.now();
        // Each refusing service gives its reason; the subject is told them all.
        let refused: Vec<String> = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Rejected)
            .map(|t| {
                format!(
                    "the {} service could not carry out \"{}\": {}",
                    t.service,
                    t.action.replace('_', " "),
                    t.last_error
                        .as_deref()
                        .unwrap_or_default()
                        .replace('\n', " ")
                )
            })
            .collect();
        let kind = RequestKind::from_str_name(&req.kind).unwrap_or_default();
        // Read once for all that closing does with the request: its message, its details,
        // forgetting its contact address.
        let key = match key {
            Some(key) => key,
            None => self.store.key(KeyOf::Request(request_id)).await?,
        };
        let closed = if !refused.is_empty() {
            crate::refuse::refuse(
                &self.store,
                &self.outbox,
                &self.peers,
                &key,
                &req,
                &refused,
                now,
            )
            .await?
        } else {
            let exports = matches!(
                kind,
                RequestKind::Access | RequestKind::Portability | RequestKind::CcpaKnow
            );
            let expires =
                exports.then(|| now + chrono::Duration::days(self.settings.package_days.max(1)));
            // The message and the address it goes to are stored with the close: the
            // address is forgotten once the message owed is queued, and not before.
            let told = Told {
                message: self
                    .completion(&key, &req, kind, &tasks, expires, now)
                    .await?,
                forgotten: Outbox::without_contact(&key, &req)?,
            };
            self.store.complete(request_id, expires, told, now).await?
        };
        if closed {
            if refused.is_empty() && mailbox::erases(&req.kind) {
                // The subject is gone: so are the addresses we hold for them.
                if let Some(subject) = req.subject_id.as_deref() {
                    self.shred_erased(Some(subject)).await;
                }
            }
            tracing::info!(request_id, kind = %req.kind, "request closed");
            let _ = self.changes.send(request_id.to_owned());
        }
        Ok(())
    }

    /// Shreds what the outbox and the open requests hold of erased subjects' addresses
    /// (mailbox keys, waiting messages, contact addresses): of the subject `only`, or of
    /// all. Idempotent; a failure is retried at the next housekeeping (which does all).
    async fn shred_erased(&self, only: Option<&str>) {
        match self.store.shred_erased(only).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "messages to erased subjects shredded"),
            Err(e) => {
                tracing::warn!(error = %e, "shredding erased subjects' messages failed; will retry")
            }
        }
        match self.store.open_requests_of_erased(only).await {
            Ok(open) => {
                for req in open {
                    let forgotten = match self.store.key(KeyOf::Request(&req.request_id)).await {
                        Ok(key) => self.outbox.forget_contact(&key, &req).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = forgotten {
                        tracing::warn!(request_id = %req.request_id, error = %e, "forgetting an erased subject's address failed; will retry");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "finding erased subjects' open requests failed; will retry")
            }
        }
    }

    /// The message telling the subject their request is done (none without an address).
    async fn completion(
        &self,
        key: &pdm_crypto::DataKey,
        req: &request::Model,
        kind: RequestKind,
        tasks: &[task::Model],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<outbox::Model>> {
        let body = match kind {
            RequestKind::Erasure | RequestKind::CcpaDelete => {
                // Account deletion, step 5: "You will receive an email confirming the deletion."
                let mut kept = Vec::new();
                for t in tasks {
                    if let Some(receipt) = t
                        .result
                        .as_deref()
                        .and_then(|r| STANDARD.decode(r).ok())
                        .and_then(|b| {
                            pdm_proto::subject::v1::ErasureReceipt::decode(b.as_slice()).ok()
                        })
                    {
                        for r in receipt.retained {
                            kept.push(format!("- {} ({}): {}", r.category, t.service, r.reason));
                        }
                    }
                }
                let kept = if kept.is_empty() {
                    "Nothing is kept.".to_owned()
                } else {
                    format!("Kept by law:\n{}", kept.join("\n"))
                };
                match sealed::open_details(key, &req.details)
                    .ok()
                    .and_then(|d| d.child_report)
                {
                    // "Our policy towards the Children": the reporter hears that it is done.
                    Some(report) => format!(
                        "The personal data of the account you reported (report {report}) has been removed from our records (request {}).\n{kept}\n",
                        req.request_id
                    ),
                    None => format!(
                        "Your account and its associated data have been deleted (request {}).\n{kept}\n",
                        req.request_id
                    ),
                }
            }
            RequestKind::Access | RequestKind::Portability | RequestKind::CcpaKnow => format!(
                "The copy of your data you asked for (request {}) is ready to download until {}.\n",
                req.request_id,
                expires
                    .map(|e| e.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            ),
            _ => format!("Your request {} has been carried out.\n", req.request_id),
        };
        self.outbox.message(key, req, "completed", &body, now).await
    }
}
