//! Following the ledger: every committed entry, in sequence order, is published to
//! watchers and invalidates cached state that another replica changed.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use pdm_proto::consent::v1::LedgerEntryKind;
use pdm_runtime::jobs::{Jobs, OnFailure};
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    cache::DecisionCache,
    store::{Row, Store},
};

/// Entries buffered for slow watchers before they must catch up from the database.
const BROADCAST_CAPACITY: usize = 4096;
/// The cache is trusted while the follower read the ledger within this many intervals
/// (and at least [`MIN_TRUST`]).
const TRUSTED_INTERVALS: u32 = 4;
/// The shortest time the cache is trusted after the follower's last read.
const MIN_TRUST: Duration = Duration::from_secs(2);

/// The ledger follower's handles.
#[derive(Debug, Clone)]
pub struct Ledger {
    tx: broadcast::Sender<Arc<Row>>,
    wake: Arc<Notify>,
    local: Arc<Mutex<HashSet<i64>>>,
    /// The last position whose entry this replica applied (its cache reflects every
    /// entry up to it): what consistency tokens are compared with.
    applied: Arc<watch::Sender<i64>>,
    /// When the follower last read the ledger, in milliseconds after `epoch`.
    read_at_ms: Arc<AtomicU64>,
    epoch: Instant,
    trust: Duration,
}

impl Ledger {
    /// Starts following the ledger after its current end, as a job of `jobs`. Without the
    /// follower this replica would answer from a cache other replicas' writes no longer
    /// invalidate: if it ever ends, the service stops serving.
    pub async fn start(
        store: Store,
        cache: Arc<DecisionCache>,
        interval: Duration,
        jobs: &Jobs,
    ) -> crate::error::Result<Self> {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        // The cache starts empty: everything committed before now is read from the
        // database when asked, so this replica has applied the ledger up to its end.
        let start = store.max_seq().await?;
        let ledger = Self {
            tx,
            wake: Arc::new(Notify::new()),
            local: Arc::new(Mutex::new(HashSet::new())),
            applied: Arc::new(watch::Sender::new(start)),
            read_at_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            trust: (interval * TRUSTED_INTERVALS).max(MIN_TRUST),
        };
        let follower = ledger.clone();
        jobs.spawn("ledger follower", OnFailure::StopServing, move |stop| {
            follow(
                follower.clone(),
                store.clone(),
                cache.clone(),
                interval,
                stop,
                start,
            )
        });
        Ok(ledger)
    }

    /// New entries, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Row>> {
        self.tx.subscribe()
    }

    /// Whether the follower has read the ledger recently enough for the cache to be
    /// trusted. A replica that cannot read the ledger (its database connection is failing)
    /// must not answer from a cache other replicas' writes no longer reach.
    pub fn current(&self) -> bool {
        let read_at = Duration::from_millis(self.read_at_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(read_at) <= self.trust
    }

    fn read_now(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.read_at_ms.store(ms, Ordering::Release);
    }

    /// The last position this replica applied.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Waits (at most `limit`) until this replica has applied the ledger up to
    /// `sequence`, asking the follower to read now rather than at its next tick.
    /// Whether it has.
    pub async fn caught_up(&self, sequence: i64, limit: Duration) -> bool {
        if self.applied() >= sequence {
            return true;
        }
        let mut applied = self.applied.subscribe();
        self.wake.notify_one();
        matches!(
            tokio::time::timeout(limit, applied.wait_for(|at| *at >= sequence)).await,
            Ok(Ok(_))
        )
    }

    /// Tells the follower about entries this replica wrote (their state is already
    /// cached) and wakes it.
    pub fn wrote(&self, seqs: impl IntoIterator<Item = i64>) {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(seqs);
        self.wake.notify_one();
    }
}

async fn follow(
    ledger: Ledger,
    store: Store,
    cache: Arc<DecisionCache>,
    interval: Duration,
    stop: CancellationToken,
    mut last: i64,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = ledger.wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        loop {
            let rows = match store.after(last, 1000).await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        trusted = ledger.current(),
                        "ledger follower: read failed; retrying (while it fails, checks past the trust window read the database)"
                    );
                    break;
                }
            };
            ledger.read_now();
            if rows.is_empty() {
                break;
            }
            for row in rows {
                last = row.seq;
                let written_here = ledger
                    .local
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&row.seq);
                if !written_here {
                    if let Ok(id) = Uuid::parse_str(&row.subject_id) {
                        cache.invalidate(&id);
                    } else if row.kind == LedgerEntryKind::Erased.as_str_name() {
                        // Another replica erased someone: the entry names only a pseudonym,
                        // so forget everything (erasures are rare; reloads are cheap).
                        cache.clear();
                    }
                }
                // No receiver is fine: nobody is watching.
                let _ = ledger.tx.send(Arc::new(row));
            }
            ledger.applied.send_replace(last);
        }
    }
}
