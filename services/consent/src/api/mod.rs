//! The gRPC edge: request validation, decisions from the cache, writes to the ledger.

mod consent;
mod convert;
mod metrics;
pub mod requests;
mod subject_data;
mod watch;

use std::sync::Arc;

use pdm_runtime::SharedClock;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    cache::Known,
    domain::catalogue::Catalogue,
    error::{ConsentError, Result},
    ledger::Ledger,
    store::{NewEntry, Row, Store},
    subjects::Subjects,
};

/// The consent service's gRPC handlers (ConsentService and SubjectDataService).
#[derive(Debug, Clone)]
pub struct ConsentApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    subjects: Subjects,
    catalogue: Arc<Catalogue>,
    clock: SharedClock,
    ledger: Ledger,
    /// One writer at a time: the cache is updated from the ledger it just committed
    /// before the next write starts, so a grant racing a withdrawal cannot leave a stale
    /// "allowed" behind.
    writer: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

impl ConsentApi {
    /// Handlers over the store, resolver and ledger follower.
    pub fn new(
        store: Store,
        subjects: Subjects,
        catalogue: Arc<Catalogue>,
        clock: SharedClock,
        ledger: Ledger,
        stop: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                subjects,
                catalogue,
                clock,
                ledger,
                writer: tokio::sync::Mutex::new(()),
                stop,
            }),
        }
    }

    /// The subject's state; `NOT_FOUND` when identity does not know it.
    async fn known_subject(&self, subject: &Uuid) -> Result<crate::domain::state::SubjectState> {
        match self
            .inner
            .subjects
            .resolve(subject, self.inner.clock.now())
            .await?
        {
            Known::Subject(state) => Ok(state),
            Known::Unknown => Err(ConsentError::UnknownSubject),
        }
    }

    /// Appends entries for one subject and makes the result visible to every later check
    /// before returning.
    async fn record(&self, subject: &Uuid, entries: Vec<NewEntry>) -> Result<Vec<Row>> {
        let _writer = self.inner.writer.lock().await;
        let now = self.inner.clock.now();
        let rows = self.inner.store.append(entries, now).await?;
        let known = self.inner.subjects.load(subject, now).await?;
        self.inner
            .subjects
            .cache()
            .put_written(*subject, known, now);
        self.inner.ledger.wrote(rows.iter().map(|r| r.seq));
        Ok(rows)
    }
}
