//! The gRPC edge: validation and minimisation, the consent gate, bulk writes.

mod ingest;
pub(crate) mod metrics;
pub mod requests;
mod subject_data;
mod telemetry;
mod tracking;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use pdm_crypto::{DataKey, key_store::KeyStoreError};
use pdm_runtime::{
    SharedClock,
    relationships::{Relationships, Scope},
};
use pdm_tls::identity::Caller;
use sea_orm::DbErr;
use tokio::sync::{Notify, Semaphore};

use crate::{
    domain::{geo::GeoDb, scrub::Scrubber},
    error::{Result, TelemetryError},
    gate::ConsentGate,
    settings::TelemetrySettings,
    store::Store,
};

/// Most subject keys kept unwrapped in memory.
const KEY_CACHE: usize = 100_000;

/// The telemetry service's gRPC handlers (TelemetryService and SubjectDataService).
#[derive(Debug, Clone)]
pub struct TelemetryApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    gate: Arc<ConsentGate>,
    clock: SharedClock,
    settings: TelemetrySettings,
    geo: GeoDb,
    scrubber: Scrubber,
    /// Batches in flight: past the limit, callers hear RESOURCE_EXHAUSTED.
    batches: Semaphore,
    /// Keyed hashes of erased subjects.
    suppressed: RwLock<HashSet<Vec<u8>>>,
    /// Restricted subjects.
    restricted: RwLock<HashSet<String>>,
    keys: RwLock<HashMap<String, DataKey>>,
    /// Wakes the background deleter.
    erasures: Arc<Notify>,
    /// Which subjects a company client may see (identity's links).
    relationships: Arc<Relationships>,
}

impl TelemetryApi {
    /// Handlers over the store, the consent gate and identity's links; loads the
    /// suppression and restriction lists.
    pub async fn new(
        store: Store,
        (gate, relationships): (Arc<ConsentGate>, Arc<Relationships>),
        clock: SharedClock,
        settings: TelemetrySettings,
        geo: GeoDb,
        scrubber: Scrubber,
        erasures: Arc<Notify>,
    ) -> Result<Self> {
        let suppressed = store.suppressed().await?.into_iter().collect();
        let restricted = store.restricted().await?.into_iter().collect();
        Ok(Self {
            inner: Arc::new(Inner {
                batches: Semaphore::new(settings.max_batches_in_flight.max(1)),
                store,
                gate,
                clock,
                settings,
                geo,
                scrubber,
                suppressed: RwLock::new(suppressed),
                restricted: RwLock::new(restricted),
                keys: RwLock::new(HashMap::new()),
                erasures,
                relationships,
            }),
        })
    }

    /// Whether `caller` may send data about `subject`. Policy, "Data Security &
    /// Protection": restricted access; service providers get only what they need. A
    /// company client sees only the subjects it is linked with (identity's links); data
    /// about any other is treated as data about a subject that does not exist.
    async fn visible(&self, caller: Option<&Caller>, subject: &str) -> Result<bool> {
        match self.inner.relationships.scope(caller, subject).await {
            Ok(scope) => Ok(scope == Scope::Allowed),
            Err(_) => Err(TelemetryError::IdentityUnavailable),
        }
    }

    fn is_suppressed(&self, subject: &str) -> bool {
        let hash = self.inner.store.subject_hash(subject);
        self.inner
            .suppressed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&hash)
    }

    fn is_restricted(&self, subject: &str) -> bool {
        self.inner
            .restricted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(subject)
    }

    /// The subject's data key, created on first use.
    async fn key(&self, subject: &str) -> Result<DataKey> {
        if let Some(key) = self
            .inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(subject)
        {
            return Ok(key.clone());
        }
        let key = match self
            .inner
            .store
            .keys()
            .find_or_create(subject, self.inner.clock.now())
            .await
        {
            Ok(key) => key,
            // Made (or found), then gone before it could be read: only an erasure
            // deletes keys, and it has committed.
            Err(KeyStoreError::Db(DbErr::RecordNotInserted)) => {
                return Err(TelemetryError::ErasedMeanwhile(vec![subject.to_owned()]));
            }
            Err(e) => return Err(e.into()),
        };
        let mut keys = self.inner.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= KEY_CACHE {
            keys.clear();
        }
        keys.insert(subject.to_owned(), key.clone());
        Ok(key)
    }

    /// Subjects a write found erased after they were judged (an erasure that raced the
    /// request, possibly on another replica): suppressed here from now on, their keys
    /// forgotten, and a key created again meanwhile destroyed.
    async fn forget_erased(&self, subjects: &[String]) -> Result<()> {
        {
            let mut suppressed = self
                .inner
                .suppressed
                .write()
                .unwrap_or_else(|e| e.into_inner());
            suppressed.extend(subjects.iter().map(|s| self.inner.store.subject_hash(s)));
        }
        {
            let mut keys = self.inner.keys.write().unwrap_or_else(|e| e.into_inner());
            for s in subjects {
                keys.remove(s);
            }
        }
        for s in subjects {
            self.inner.store.keys().destroy(s).await?;
        }
        Ok(())
    }

    /// The subject's key if it still exists (never creates one).
    async fn existing_key(&self, subject: &str) -> Result<Option<DataKey>> {
        Ok(self.inner.store.keys().find(subject).await?)
    }
}

impl TelemetryApi {
    /// Policy, "aggregate information": small buckets are kept only for the window in
    /// which they may reach k (`telemetry.small_bucket_days`); choices only while they
    /// apply (`telemetry.tracking_choice_days`).
    async fn purge_small_and_lapsed(&self) {
        let settings = &self.inner.settings;
        let now = self.inner.clock.now();
        let cutoff = crate::domain::aggregate::small_bucket_cutoff(
            now.date_naive(),
            settings.small_bucket_days,
        );
        match self
            .inner
            .store
            .purge_small_buckets(&cutoff.format("%Y-%m-%d").to_string(), settings.k_threshold)
            .await
        {
            Ok(0) => {}
            Ok(buckets) => {
                tracing::info!(buckets, "small aggregate buckets past their window deleted")
            }
            Err(e) => tracing::warn!(error = %e, "small bucket purge failed; will retry"),
        }
        let lapsed = now - chrono::Duration::days(i64::from(settings.tracking_choice_days));
        match self.inner.store.purge_choices(lapsed).await {
            Ok(0) => {}
            Ok(choices) => tracing::info!(choices, "lapsed tracking choices deleted"),
            Err(e) => tracing::warn!(error = %e, "tracking choice purge failed; will retry"),
        }
    }
}

/// Deletes erased subjects' rows in the background, as soon as an erasure is queued; and
/// every [`HOUSEKEEPING`], aggregate buckets past their window still short of k and
/// lapsed tracking choices, and refreshes the suppression list written by other replicas.
pub async fn run_deleter(api: TelemetryApi, stop: tokio_util::sync::CancellationToken) {
    // Housekeeping keeps its own beat: an erasure wakes the loop for its rows only, so a
    // run of erasures neither repeats it per erasure (it reads every suppression) nor
    // puts it off.
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first pass does it all; the next is a period later.
    housekeeping.reset();
    let mut due = true;
    // The latest erasure time read from the suppression list; none before the first read,
    // which reads it all.
    let mut seen: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        match api.inner.store.erasure_queue().await {
            Ok(queue) => {
                for subject in queue {
                    match api.inner.store.delete_subject_events(&subject).await {
                        Ok(n) => {
                            tracing::info!(subject_id = %subject, rows = n, "erased subject's events deleted");
                            if let Err(e) = api.inner.store.dequeue_erasure(&subject).await {
                                tracing::warn!(error = %e, "erasure queue update failed");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "background deletion failed; will retry")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "erasure queue unreadable; will retry"),
        }
        if due {
            api.purge_small_and_lapsed().await;
            // Read again from a margin before the latest erasure seen: another replica's
            // suppression may commit after a later one, or be stamped by a clock a little
            // behind. One missed all the same is still caught where a batch or a crash
            // report is written (the write reads its subjects' suppressions in its
            // transaction); this list only spares the work before it.
            let since = seen.map(|latest| latest - SUPPRESSION_OVERLAP);
            match api.inner.store.suppressed_since(since).await {
                Ok((hashes, latest)) => {
                    api.inner
                        .suppressed
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(hashes);
                    seen = seen.max(latest);
                }
                Err(e) => tracing::warn!(error = %e, "suppression list unreadable; will retry"),
            }
        }
        due = tokio::select! {
            () = stop.cancelled() => return,
            () = api.inner.erasures.notified() => false,
            _ = housekeeping.tick() => true,
        };
    }
}

/// How often the deleter purges small buckets and lapsed choices and refreshes the
/// suppression list.
const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(5);
/// How far before the latest erasure it has seen the deleter reads the suppression list
/// again (see [`run_deleter`]).
const SUPPRESSION_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);
