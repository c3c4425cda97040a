//! The consent gate: "may we process this subject's data for this purpose?" and "may we
//! send this message?" answered in-process.
//!
//! Decisions are cached (at most `capacity` of them, each for at most `max_age`), filled
//! on a miss through BatchCheckProcessing (misses arriving within `batch_window` share
//! one call) and kept coherent by WatchConsentChanges: every change the ledger records
//! drops the subject's cached decisions (an erasure drops them all), and after a
//! disconnect the stream resumes from its cursor, so no change is lost or seen twice.
//!
//! Fail-closed: once the stream has been down longer than `stale_after`, the cache is not
//! trusted; decisions go to the network, and if that fails too, processing is denied
//! ([`Verdict::FailedClosed`], with the reason).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use pdm_proto::consent::v1::{Channel as ContactChannel, LedgerEntryKind, MessageKind, Reason};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    consent::{ConsentClient, Decision},
    error::PdmError,
};

/// How a gate caches and when it stops trusting its cache.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Most decisions cached (subject × purpose or channel and kind).
    pub capacity: usize,
    /// Longest a cached decision is used (changes outside the ledger, such as a subject's
    /// region, reach the gate within this).
    pub max_age: Duration,
    /// How long the change stream may be down before the cache is no longer trusted.
    pub stale_after: Duration,
    /// How long a miss waits for others to share its BatchCheckProcessing.
    pub batch_window: Duration,
    /// Most checks in one BatchCheckProcessing.
    pub max_batch: usize,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_age: Duration::from_secs(60),
            stale_after: Duration::from_secs(5),
            batch_window: Duration::from_millis(1),
            max_batch: 500,
        }
    }
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The consent service's decision (from the cache or the network).
    Decided(Decision),
    /// No decision could be had and the cache was not trusted: denied.
    FailedClosed {
        /// Why (no personal data).
        why: String,
    },
}

impl Verdict {
    /// Whether processing may go ahead.
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Decided(d) if d.allowed)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    decision: Decision,
    at: Instant,
}

#[derive(Debug, Default)]
struct Subject {
    purposes: HashMap<String, Entry>,
    contact: HashMap<(i32, i32), Entry>,
}

impl Subject {
    fn len(&self) -> usize {
        self.purposes.len() + self.contact.len()
    }
}

#[derive(Debug, Default)]
struct Cache {
    subjects: HashMap<String, Subject>,
    len: usize,
    /// Bumped by every invalidation: a decision fetched before one is not cached.
    generation: u64,
}

impl Cache {
    fn invalidate(&mut self, subject: &str) {
        if let Some(gone) = self.subjects.remove(subject) {
            self.len -= gone.len();
        }
        self.generation += 1;
    }

    fn clear(&mut self) {
        self.subjects.clear();
        self.len = 0;
        self.generation += 1;
    }

    /// Room for one more decision: drops some subject's (an arbitrary one) when full.
    fn make_room(&mut self, capacity: usize) {
        while self.len >= capacity {
            let Some(victim) = self.subjects.keys().next().cloned() else {
                return;
            };
            if let Some(gone) = self.subjects.remove(&victim) {
                self.len -= gone.len();
            }
        }
    }
}

struct Miss {
    subject: String,
    purpose: String,
    reply: oneshot::Sender<Result<Decision, PdmError>>,
}

#[derive(Debug)]
struct Inner {
    consent: ConsentClient,
    options: GateOptions,
    cache: RwLock<Cache>,
    started: Instant,
    /// The stream is connected and has replayed what it missed.
    connected: AtomicBool,
    /// Milliseconds after `started` when the stream went down.
    down_since_ms: AtomicU64,
    /// Changes applied (for tests and metrics).
    applied: AtomicU64,
    /// The ledger position the cache reflects (the stream's cursor).
    position: AtomicI64,
    misses: mpsc::Sender<Miss>,
}

/// The consent gate. Cheap to clone; the background tasks stop when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct ConsentGate {
    inner: Arc<Inner>,
    _owner: Arc<StopOnDrop>,
}

#[derive(Debug)]
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl ConsentGate {
    /// Starts a gate over `consent` (its change stream and miss batcher are tasks of the
    /// current Tokio runtime).
    pub fn start(consent: ConsentClient, options: GateOptions) -> Self {
        let (misses, queue) = mpsc::channel(options.max_batch.max(1) * 4);
        let stop = CancellationToken::new();
        let inner = Arc::new(Inner {
            consent,
            options,
            cache: RwLock::new(Cache::default()),
            started: Instant::now(),
            connected: AtomicBool::new(false),
            down_since_ms: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            position: AtomicI64::new(0),
            misses,
        });
        tokio::spawn(follow(Arc::downgrade(&inner), stop.clone()));
        tokio::spawn(batch(Arc::downgrade(&inner), queue, stop.clone()));
        Self {
            inner,
            _owner: Arc::new(StopOnDrop(stop)),
        }
    }

    /// Whether `subject`'s data may be processed for `purpose`.
    pub async fn allowed(&self, subject: &str, purpose: &str) -> Verdict {
        let trusted = self.inner.trusted();
        if trusted && let Some(decision) = self.inner.cached_purpose(subject, purpose) {
            return Verdict::Decided(decision);
        }
        let generation = self.inner.generation();
        let fetched = if trusted {
            self.inner.through_batch(subject, purpose).await
        } else {
            self.inner.consent.check(subject, purpose, None).await
        };
        match fetched {
            Ok(decision) => {
                self.inner
                    .keep(subject, Key::Purpose(purpose), decision, generation);
                Verdict::Decided(decision)
            }
            Err(err) => fail_closed(&err),
        }
    }

    /// Whether a message of `kind` may be sent to `subject` on `channel`.
    pub async fn can_contact(
        &self,
        subject: &str,
        channel: ContactChannel,
        kind: MessageKind,
    ) -> Verdict {
        let key = (channel as i32, kind as i32);
        let trusted = self.inner.trusted();
        if trusted && let Some(decision) = self.inner.cached_contact(subject, key) {
            return Verdict::Decided(decision);
        }
        let generation = self.inner.generation();
        match self
            .inner
            .consent
            .can_contact(subject, channel, kind, None)
            .await
        {
            Ok(decision) => {
                self.inner
                    .keep(subject, Key::Contact(key), decision, generation);
                Verdict::Decided(decision)
            }
            Err(err) => fail_closed(&err),
        }
    }

    /// The cached answer alone, without waiting (None on a miss or when the cache is not
    /// trusted): for the hottest paths and the benchmark.
    pub fn cached(&self, subject: &str, purpose: &str) -> Option<Decision> {
        if !self.inner.trusted() {
            return None;
        }
        self.inner.cached_purpose(subject, purpose)
    }

    /// Whether the change stream is connected and caught up.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Decisions cached now.
    pub fn len(&self) -> usize {
        self.inner.read().len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ledger position the cache reflects: every change up to it has been applied.
    pub fn position(&self) -> i64 {
        self.inner.position.load(Ordering::Acquire)
    }

    /// Ledger changes applied since the gate started.
    pub fn changes_applied(&self) -> u64 {
        self.inner.applied.load(Ordering::Relaxed)
    }
}

fn fail_closed(err: &PdmError) -> Verdict {
    match err {
        // The service answered: a bad subject id or purpose is the caller's error, and
        // still no permission.
        PdmError::InvalidArgument { .. }
        | PdmError::PermissionDenied(_)
        | PdmError::NotFound(_) => Verdict::FailedClosed {
            why: format!("consent refused the check: {err}"),
        },
        _ => Verdict::FailedClosed {
            why: format!("consent unreachable and no trusted cached decision: {err}"),
        },
    }
}

enum Key<'a> {
    Purpose(&'a str),
    Contact((i32, i32)),
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    fn generation(&self) -> u64 {
        self.read().generation
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether cached decisions may be used: the stream is up, or has been down for less
    /// than `stale_after`.
    fn trusted(&self) -> bool {
        if self.connected.load(Ordering::Acquire) {
            return true;
        }
        let down_for = self
            .now_ms()
            .saturating_sub(self.down_since_ms.load(Ordering::Acquire));
        Duration::from_millis(down_for) < self.options.stale_after
    }

    fn fresh(&self, entry: &Entry) -> Option<Decision> {
        (entry.at.elapsed() < self.options.max_age).then_some(entry.decision)
    }

    fn cached_purpose(&self, subject: &str, purpose: &str) -> Option<Decision> {
        let cache = self.read();
        cache
            .subjects
            .get(subject)?
            .purposes
            .get(purpose)
            .and_then(|e| self.fresh(e))
    }

    fn cached_contact(&self, subject: &str, key: (i32, i32)) -> Option<Decision> {
        let cache = self.read();
        cache
            .subjects
            .get(subject)?
            .contact
            .get(&key)
            .and_then(|e| self.fresh(e))
    }

    /// Caches `decision` unless a change was applied since it was asked for. Unknown
    /// subjects are not cached: a sign-up makes them known without a ledger entry.
    fn keep(&self, subject: &str, key: Key<'_>, decision: Decision, generation: u64) {
        if decision.reason == Reason::UnknownSubject || self.options.capacity == 0 {
            return;
        }
        let mut cache = self.write();
        if cache.generation != generation {
            return;
        }
        let entry = Entry {
            decision,
            at: Instant::now(),
        };
        cache.make_room(self.options.capacity);
        let entries = cache.subjects.entry(subject.to_owned()).or_default();
        let added = match key {
            Key::Purpose(purpose) => entries.purposes.insert(purpose.to_owned(), entry),
            Key::Contact(key) => entries.contact.insert(key, entry),
        }
        .is_none();
        if added {
            cache.len += 1;
        }
    }

    async fn through_batch(&self, subject: &str, purpose: &str) -> Result<Decision, PdmError> {
        let (reply, answer) = oneshot::channel();
        let miss = Miss {
            subject: subject.to_owned(),
            purpose: purpose.to_owned(),
            reply,
        };
        if self.misses.send(miss).await.is_err() {
            return self.consent.check(subject, purpose, None).await;
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => self.consent.check(subject, purpose, None).await,
        }
    }

    fn apply(&self, subject_id: &str, kind: i32) {
        let mut cache = self.write();
        // An erasure's entry names only a pseudonym: forget everyone (erasures are rare).
        if kind == LedgerEntryKind::Erased as i32 || subject_id.starts_with("erased:") {
            cache.clear();
        } else if !subject_id.is_empty() {
            // (An entry without a subject is another client's change, shown as its
            // position only: it moves the cursor and forgets nothing.)
            cache.invalidate(subject_id);
        }
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    fn went_down(&self) {
        if self.connected.swap(false, Ordering::AcqRel) {
            self.down_since_ms.store(self.now_ms(), Ordering::Release);
            tracing::warn!("consent gate: change stream lost; reconnecting");
        }
    }
}

/// Follows the ledger: connects, replays what was missed, applies every change; after a
/// disconnect, resumes from the last change applied.
async fn follow(inner: std::sync::Weak<Inner>, stop: CancellationToken) {
    let mut cursor: Option<i64> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(gate) = inner.upgrade() else { return };
        let consent = gate.consent.clone();
        drop(gate);
        let session = async {
            // Everything up to here is read from the service on a miss: start after it.
            let position = consent.ledger_position().await?.sequence;
            let after = *cursor.get_or_insert(position);
            let mut stream = consent.watch(after).await?;
            let caught_up = |at: i64, gate: &Inner| {
                if at >= position && !gate.connected.swap(true, Ordering::AcqRel) {
                    tracing::info!("consent gate: change stream connected");
                }
            };
            if let Some(gate) = inner.upgrade() {
                gate.position.fetch_max(after, Ordering::AcqRel);
                caught_up(after, &gate);
            }
            while let Some(message) = stream.message().await? {
                let Some(entry) = message.entry else { continue };
                let Some(gate) = inner.upgrade() else {
                    return Ok(());
                };
                gate.apply(&entry.subject_id, entry.kind);
                cursor = Some(entry.sequence);
                gate.position.store(entry.sequence, Ordering::Release);
                caught_up(entry.sequence, &gate);
            }
            Ok::<(), PdmError>(())
        };
        let ended = tokio::select! {
            () = stop.cancelled() => return,
            ended = session => ended,
        };
        let Some(gate) = inner.upgrade() else { return };
        gate.went_down();
        match ended {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(err) => {
                tracing::debug!(error = %err, "consent gate: change stream failed");
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        drop(gate);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Answers misses in batches: the first miss waits `batch_window` for others (up to
/// `max_batch`), then one BatchCheckProcessing answers them all.
async fn batch(
    inner: std::sync::Weak<Inner>,
    mut queue: mpsc::Receiver<Miss>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            first = queue.recv() => match first {
                Some(first) => first,
                None => return,
            },
        };
        let Some(gate) = inner.upgrade() else { return };
        let (window, max) = (gate.options.batch_window, gate.options.max_batch.max(1));
        let mut misses = vec![first];
        let until = tokio::time::Instant::now() + window;
        while misses.len() < max {
            match tokio::time::timeout_at(until, queue.recv()).await {
                Ok(Some(miss)) => misses.push(miss),
                Ok(None) | Err(_) => break,
            }
        }
        let pairs: Vec<(String, String)> = misses
            .iter()
            .map(|m| (m.subject.clone(), m.purpose.clone()))
            .collect();
        match gate.consent.check_many(&pairs, None).await {
            Ok(decisions) => {
                for (miss, decision) in misses.into_iter().zip(decisions) {
                    let _ = miss.reply.send(Ok(decision));
                }
            }
            Err(err) => {
                // One bad pair fails the batch: ask for each alone, so only it fails.
                if matches!(err, PdmError::InvalidArgument { .. }) {
                    for miss in misses {
                        let one = gate.consent.check(&miss.subject, &miss.purpose, None).await;
                        let _ = miss.reply.send(one);
                    }
                } else {
                    for miss in misses {
                        let _ = miss.reply.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pdm_proto::common::v1::LegalBasis;

    use super::*;

    fn allowed() -> Decision {
        Decision {
            allowed: true,
            reason: Reason::ConsentGiven,
            legal_basis: LegalBasis::Consent,
        }
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_forgets_a_subject_on_a_change() {
        let mut cache = Cache::default();
        for i in 0..10 {
            cache.make_room(4);
            let subject = cache.subjects.entry(format!("s{i}")).or_default();
            subject.purposes.insert(
                "p".into(),
                Entry {
                    decision: allowed(),
                    at: Instant::now(),
                },
            );
            cache.len += 1;
            assert!(cache.len <= 4);
        }
        let kept = cache.subjects.keys().next().cloned().unwrap_or_default();
        let generation = cache.generation;
        cache.invalidate(&kept);
        assert!(!cache.subjects.contains_key(&kept));
        assert_eq!(cache.len, 3);
        assert_eq!(cache.generation, generation + 1);
        cache.clear();
        assert_eq!(cache.len, 0);
    }
}
