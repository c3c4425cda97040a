//! The consent gate: may this subject's data be processed for product analytics (or, for
//! advertising events, for "marketing_ads"; for crash reports, for "crash_reports")?
//!
//! Decisions live in a local cache fed by consent's WatchConsentChanges stream: a change
//! for a subject evicts it. Before a batch is judged, ingestion asks consent for its
//! ledger position (one small call per batch, never one per event) and waits, briefly,
//! until the watch has delivered everything up to it; so a withdrawal that returned
//! before the batch arrived always counts. Subjects not cached (or every subject, while
//! the watch is down or behind) are asked with one BatchCheckProcessing call.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{
        BatchCheckProcessingRequest, CheckItem, GetLedgerPositionRequest, LedgerEntryKind, Reason,
        WatchConsentChangesRequest, consent_service_client::ConsentServiceClient,
    },
    telemetry::v1::DropReason,
};
use pdm_runtime::{
    client::TracedChannel,
    jobs::{Jobs, OnFailure},
};
use tokio::sync::Notify;

use crate::error::{Result, TelemetryError};

/// The purpose usage events are processed for.
pub const PURPOSE: &str = "product_analytics";
/// The purpose of a logged-in subject's advertising events.
pub const ADVERTISING: &str = "marketing_ads";
/// The purpose crash reports are filed under (legitimate interests; the subject may
/// object).
pub const CRASH_REPORTS: &str = "crash_reports";
/// The purpose strictly necessary tracking is filed under (legitimate interests; never
/// asked: no agreement is needed).
pub const STRICTLY_NECESSARY: &str = "strictly_necessary_tracking";
/// Every purpose the gate asks about (and caches decisions of).
pub const PURPOSES: [&str; 3] = [PURPOSE, ADVERTISING, CRASH_REPORTS];
/// Most cached decisions; past it the cache starts over (a miss only costs a batch call).
const CACHE_CAPACITY: usize = 1_000_000;

/// Admitted on a legal basis (consent, or legitimate interests where analytics rest on
/// them), or dropped for a reason.
pub type Verdict = std::result::Result<LegalBasis, DropReason>;

/// Maps a consent decision to the gate's verdict.
pub fn verdict(allowed: bool, reason: i32, basis: i32) -> Verdict {
    if allowed {
        return Ok(LegalBasis::try_from(basis).unwrap_or_default());
    }
    Err(match Reason::try_from(reason).unwrap_or_default() {
        Reason::Withdrawn => DropReason::Withdrawn,
        Reason::Restricted => DropReason::Restricted,
        Reason::Objected => DropReason::Objected,
        Reason::UnknownSubject => DropReason::UnknownSubject,
        _ => DropReason::NoConsent,
    })
}

/// The gate.
#[derive(Debug)]
pub struct ConsentGate {
    client: ConsentServiceClient<TracedChannel>,
    /// Decisions by subject and purpose.
    cache: RwLock<HashMap<(String, &'static str), Verdict>>,
    /// Highest ledger sequence the watch has applied.
    cursor: AtomicI64,
    /// Whether the watch stream is up (the cache is trusted only then).
    watching: AtomicBool,
    /// Bumped by every change the watch applies.
    generation: AtomicU64,
    progressed: Notify,
    fence_wait: Duration,
}

impl ConsentGate {
    /// A gate over a consent client; call [`ConsentGate::start`] to follow changes.
    pub fn new(client: ConsentServiceClient<TracedChannel>, fence_wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            cache: RwLock::new(HashMap::new()),
            cursor: AtomicI64::new(-1),
            watching: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            progressed: Notify::new(),
            fence_wait,
        })
    }

    /// Follows consent's changes until the service stops, as a job of `jobs`: started
    /// again if it dies, from a clear cache (as after any interrupted watch).
    pub fn start(self: &Arc<Self>, jobs: &Jobs) {
        let gate = Arc::clone(self);
        jobs.spawn("consent gate", OnFailure::Restart, move |stop| {
            let gate = Arc::clone(&gate);
            async move {
                gate.watching.store(false, Ordering::SeqCst);
                gate.clear();
                let mut backoff = Duration::from_millis(100);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        result = gate.watch() => {
                            gate.watching.store(false, Ordering::SeqCst);
                            gate.clear();
                            if let Err(code) = result {
                                tracing::warn!(?code, "consent watch interrupted; reconnecting");
                            }
                        }
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        });
    }

    async fn watch(&self) -> std::result::Result<(), tonic::Code> {
        let mut client = self.client.clone();
        // A fresh start (or a restart after a gap) begins at the ledger's end with an empty
        // cache: nothing older can be stale in it.
        let start = client
            .get_ledger_position(GetLedgerPositionRequest {})
            .await
            .map_err(|s| s.code())?
            .into_inner()
            .sequence;
        let mut stream = client
            .watch_consent_changes(WatchConsentChangesRequest {
                after_sequence: start,
            })
            .await
            .map_err(|s| s.code())?
            .into_inner();
        self.clear();
        self.cursor.store(start, Ordering::SeqCst);
        self.watching.store(true, Ordering::SeqCst);
        self.progressed.notify_waiters();
        tracing::info!(from = start, "following consent changes");
        while let Some(message) = stream.message().await.map_err(|s| s.code())? {
            let Some(entry) = message.entry else { continue };
            if entry.kind == LedgerEntryKind::Erased as i32 {
                // Erasures name a pseudonym only: start over.
                self.clear();
            } else {
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                for purpose in PURPOSES {
                    cache.remove(&(entry.subject_id.clone(), purpose));
                }
            }
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.cursor.store(entry.sequence, Ordering::SeqCst);
            self.progressed.notify_waiters();
        }
        Err(tonic::Code::Unavailable)
    }

    fn clear(&self) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until the watch has applied `position`; false if it is down or too slow.
    async fn caught_up(&self, position: i64) -> bool {
        let deadline = tokio::time::Instant::now() + self.fence_wait;
        loop {
            let notified = self.progressed.notified();
            if self.watching.load(Ordering::SeqCst)
                && self.cursor.load(Ordering::SeqCst) >= position
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Verdicts for distinct subjects, for `purpose` (one of [`PURPOSES`]).
    pub async fn judge(
        &self,
        subjects: &[String],
        purpose: &'static str,
    ) -> Result<HashMap<String, Verdict>> {
        let mut verdicts = HashMap::with_capacity(subjects.len());
        if subjects.is_empty() {
            return Ok(verdicts);
        }
        let position = self
            .client
            .clone()
            .get_ledger_position(GetLedgerPositionRequest {})
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "consent ledger position unavailable");
                TelemetryError::ConsentUnavailable
            })?
            .into_inner()
            .sequence;
        let trusted = self.caught_up(position).await;
        let mut misses = Vec::new();
        if trusted {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            for s in subjects {
                match cache.get(&(s.clone(), purpose)) {
                    Some(v) => {
                        verdicts.insert(s.clone(), *v);
                    }
                    None => misses.push(s.clone()),
                }
            }
        } else {
            misses.extend(subjects.iter().cloned());
        }
        if misses.is_empty() {
            return Ok(verdicts);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let answer = self
            .client
            .clone()
            .batch_check_processing(BatchCheckProcessingRequest {
                items: misses
                    .iter()
                    .map(|s| CheckItem {
                        subject_id: s.clone(),
                        purpose: purpose.to_owned(),
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "consent batch check failed");
                TelemetryError::ConsentUnavailable
            })?
            .into_inner();
        let fresh: Vec<(String, Verdict)> = misses
            .into_iter()
            .zip(answer.decisions)
            .map(|(s, d)| (s, verdict(d.allowed, d.reason, d.legal_basis)))
            .collect();
        // Cache only if no change arrived meanwhile (it might concern these subjects).
        if trusted && self.generation.load(Ordering::SeqCst) == generation {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            if cache.len() + fresh.len() > CACHE_CAPACITY {
                cache.clear();
            }
            cache.extend(fresh.iter().map(|(s, v)| ((s.clone(), purpose), *v)));
        }
        verdicts.extend(fresh);
        Ok(verdicts)
    }
}
