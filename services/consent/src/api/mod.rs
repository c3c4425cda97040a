//! The gRPC edge: request validation, decisions from the cache, writes to the ledger.

mod consent;
mod convert;
pub(crate) mod metrics;
pub mod requests;
mod statistics;
mod subject_data;
mod unsubscribe;
mod watch;

use std::sync::Arc;

use pdm_runtime::{
    SharedClock, SubjectId,
    relationships::{Relationships, Scope},
};
use pdm_tls::identity::Caller;
use tokio_util::sync::CancellationToken;

use crate::{
    cache::Known,
    domain::catalogue::Catalogue,
    domain::token::Token,
    error::{ConsentError, Result},
    ledger::Ledger,
    store::{NewEntry, Row, Store},
    subjects::Subjects,
};

/// What unsubscribe links need: the key that signs them and how long they work.
#[derive(Debug, Clone)]
pub struct Links {
    /// Signs link ids (the blind-index key derived from the KEK).
    pub index: pdm_crypto::BlindIndex,
    /// How long a link works after it is issued.
    pub validity: chrono::Duration,
}

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
    /// Which subjects a company client may see (identity's links).
    relationships: Arc<Relationships>,
    /// Unsubscribe links.
    links: Links,
    /// Longest wait for the ledger to reach a consistency token.
    token_wait: std::time::Duration,
}

/// What the handlers work with.
#[derive(Debug)]
pub struct Parts {
    /// The ledger and links database.
    pub store: Store,
    /// Regions and subject states.
    pub subjects: Subjects,
    /// The purpose catalogue.
    pub catalogue: Arc<Catalogue>,
    /// The clock.
    pub clock: SharedClock,
    /// The ledger follower.
    pub ledger: Ledger,
    /// Ends streams at shutdown.
    pub stop: CancellationToken,
    /// Which subjects a company client may see.
    pub relationships: Arc<Relationships>,
    /// Unsubscribe links.
    pub links: Links,
    /// Longest wait for the ledger to reach a consistency token (`consent.token_wait_ms`).
    pub token_wait: std::time::Duration,
}

impl ConsentApi {
    /// Handlers over the store, resolver and ledger follower.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            store,
            subjects,
            catalogue,
            clock,
            ledger,
            stop,
            relationships,
            links,
            token_wait,
        } = parts;
        Self {
            inner: Arc::new(Inner {
                store,
                subjects,
                catalogue,
                clock,
                ledger,
                writer: tokio::sync::Mutex::new(()),
                stop,
                relationships,
                links,
                token_wait,
            }),
        }
    }

    /// Returns once this replica has applied the ledger up to `at_least` (at once without
    /// a token). A token past the ledger's end was never issued by it: INVALID_ARGUMENT.
    /// Waiting is bounded by `consent.token_wait_ms` here and by the call's deadline in
    /// the server's timeout layer.
    async fn catch_up(&self, at_least: Option<Token>) -> Result<()> {
        let Some(token) = at_least else {
            return Ok(());
        };
        let ledger = &self.inner.ledger;
        if ledger.applied() >= token.sequence() {
            return Ok(());
        }
        if token.sequence() > self.inner.store.max_seq().await? {
            return Err(ConsentError::Invalid(pdm_runtime::error::invalid_field(
                "at_least",
                "ahead of this ledger: not a consistency token it issued",
            )));
        }
        if ledger
            .caught_up(token.sequence(), self.inner.token_wait)
            .await
        {
            Ok(())
        } else {
            Err(ConsentError::Behind(std::time::Duration::from_millis(100)))
        }
    }

    /// Whether `caller` may see `subject`. Policy, "Data Security & Protection":
    /// restricted access; service providers get only what they need. A company client
    /// sees only the subjects it is linked with (identity's links); for any other the
    /// answer is the one for a subject that does not exist.
    async fn visible(&self, caller: Option<&Caller>, subject: &SubjectId) -> Result<bool> {
        match self
            .inner
            .relationships
            .scope(caller, &subject.to_string())
            .await
        {
            Ok(Scope::Allowed) => Ok(true),
            Ok(Scope::Hidden) => Ok(false),
            Err(_) => Err(ConsentError::IdentityUnavailable),
        }
    }

    /// The subject's state as `caller` may know it: unknown when identity does not know
    /// the subject or the caller is a company client not linked with it (then nothing
    /// is loaded or stored).
    async fn resolve_for(&self, caller: Option<&Caller>, subject: &SubjectId) -> Result<Known> {
        if !self.visible(caller, subject).await? {
            return Ok(Known::Unknown);
        }
        self.state_of(subject, self.inner.clock.now()).await
    }

    /// The subject's state: from the cache while the ledger follower keeps it coherent,
    /// from the database while it cannot (see [`Ledger::current`]).
    async fn state_of(
        &self,
        subject: &SubjectId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Known> {
        if self.inner.ledger.current() {
            self.inner.subjects.resolve(subject, now).await
        } else {
            self.inner.subjects.load(subject, now).await
        }
    }

    /// The subject's state; `NOT_FOUND` when identity does not know it or `caller` may
    /// not see it.
    async fn known_subject(
        &self,
        caller: Option<&Caller>,
        subject: &SubjectId,
    ) -> Result<crate::domain::state::SubjectState> {
        match self.resolve_for(caller, subject).await? {
            Known::Subject(state) => Ok(state),
            Known::Unknown => Err(ConsentError::UnknownSubject),
        }
    }

    /// Appends entries for one subject and makes the result visible to every later check
    /// before returning.
    async fn record(&self, subject: &SubjectId, entries: Vec<NewEntry>) -> Result<Vec<Row>> {
        self.record_using(None, subject, entries)
            .await
            .map(Option::unwrap_or_default)
    }

    /// [`Self::record`], using up the unsubscribe link `link` in the same transaction when
    /// one is given: None, with nothing stored, when the link was used already.
    async fn record_using(
        &self,
        link: Option<&str>,
        subject: &SubjectId,
        entries: Vec<NewEntry>,
    ) -> Result<Option<Vec<Row>>> {
        let _writer = self.inner.writer.lock().await;
        let now = self.inner.clock.now();
        let rows = match link {
            None => self.inner.store.append(entries, now).await?,
            Some(link) => match self
                .inner
                .store
                .append_using_link(link, entries, now)
                .await?
            {
                Some(rows) => rows,
                None => return Ok(None),
            },
        };
        let known = self.inner.subjects.load(subject, now).await?;
        self.inner
            .subjects
            .cache()
            .put_written(*subject.as_uuid(), known, now);
        self.inner.ledger.wrote(rows.iter().map(|r| r.seq));
        Ok(Some(rows))
    }
}

/// The consistency token a write answers: the position of its last entry.
fn token_of(rows: &[Row]) -> String {
    Token::covering(rows.iter().map(|row| row.seq))
        .map(|token| token.to_string())
        .unwrap_or_default()
}
