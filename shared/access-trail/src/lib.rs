//! The access trail ("Data Security & Protection", "Performing audit functions"): every
//! call that reads or changes a subject's personal data appends an entry (time, caller,
//! method, subject, purpose, trace id) to an append-only log in the service's own
//! database, chained with a keyed MAC ([`chain`], [`keys`]), and [`service::AuditApi`]
//! verifies it and lists a subject's accesses.
//!
//! What a chain cannot show by itself (its tail cut off with the head moved back, a wiped
//! trail, a database restored from an older copy) is caught by cross-witnessing: every
//! service reports its head periodically to the next service of the ring
//! (the runtime's `witnessing` job), which appends it to its own trail ([`witness`]); and by checkpoints,
//! heads signed by each service ([`checkpoint`]) that `pdm audit checkpoint` exports and
//! `pdm audit verify --checkpoint` checks.
//!
//! A handler marks its answer with [`accessed`]; the [`layer::AuditLayer`] of every mesh
//! server turns marked answers into entries, adding the caller from the client
//! certificate and the call's trace id. Entries go through a channel to one writer task
//! that appends them in batches, in order, so a call never waits on the trail (entries
//! still in the channel when a process is killed are lost; a graceful stop writes them).
//!
//! Not recorded: consent's decision checks (they disclose no data, only whether
//! processing may go ahead, and sit on every other service's hot path) and telemetry
//! ingestion (each stored event is itself the record of that collection, and is in the
//! subject's export).
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

pub mod chain;
pub mod checkpoint;
pub mod keys;
pub mod layer;
pub mod migration;
pub mod retention;
pub mod seal_migration;
pub mod service;
pub mod store;
pub mod witness;

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use chain::{AccessEntry, Seal};

/// Entries appended per transaction at most.
const BATCH: usize = 512;
/// Entries waiting for the writer at most; past it, calls wait for room.
const QUEUE: usize = 16_384;

/// What a handler accessed, carried in its response's extensions to the audit layer.
#[derive(Debug, Clone, Default)]
pub struct Accessed {
    /// The subjects whose data the call read or changed.
    pub subjects: Vec<String>,
    /// Why, when the call said (a consent purpose, a request id).
    pub purpose: String,
}

/// Marks `response` as having read or changed `subject_id`'s data, for `purpose` (may
/// be empty).
pub fn accessed<T>(
    mut response: tonic::Response<T>,
    subject_id: impl Into<String>,
    purpose: impl Into<String>,
) -> tonic::Response<T> {
    let subject_id = subject_id.into();
    if !subject_id.is_empty() {
        response.extensions_mut().insert(Accessed {
            subjects: vec![subject_id],
            purpose: purpose.into(),
        });
    }
    response
}

/// A new answer marked with [`accessed`].
pub fn respond<T>(
    message: T,
    subject_id: impl Into<String>,
    purpose: impl Into<String>,
) -> tonic::Response<T> {
    accessed(tonic::Response::new(message), subject_id, purpose)
}

/// The sending end of a service's trail. Handlers find it in their request's extensions
/// (the [`layer::AuditLayer`] puts it there) to apply the trail's retention rule.
#[derive(Debug, Clone)]
pub struct Trail {
    tx: mpsc::Sender<AccessEntry>,
    db: DatabaseConnection,
    seal: Seal,
}

impl Trail {
    /// Starts the writer for the trail in `db`, sealing entries with `seal`; it writes
    /// what is queued and ends when `stop` is cancelled.
    pub fn start(
        db: DatabaseConnection,
        service: &'static str,
        seal: Seal,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Self {
                tx,
                db: db.clone(),
                seal: seal.clone(),
            },
            tokio::spawn(write(db, service, seal, rx, stop)),
        )
    }

    /// The trail of the service answering `request` and who is calling, when the
    /// [`layer::AuditLayer`] is in front of it (every mesh server).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<(Self, String)> {
        let trail = request.extensions().get::<Self>()?.clone();
        let caller = request
            .extensions()
            .get::<pdm_tls::identity::Caller>()
            .map_or_else(|| "anonymous".to_owned(), ToString::to_string);
        Some((trail, caller))
    }

    /// Applies the trail's retention rule of a `PurgeExpired` request ([`retention`]):
    /// the result to report for [`retention::CATEGORY`], or None when the request names
    /// no rule for it. `caller` is who asked (recorded in the purge entry).
    pub async fn purge(
        &self,
        request: &pdm_proto::subject::v1::PurgeExpiredRequest,
        caller: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<pdm_proto::subject::v1::PurgeResult>, tonic::Status> {
        let Some(rule) = retention::trail_rule(&request.rules, &request.holds) else {
            return Ok(None);
        };
        let done = store::purge_before(&self.db, &self.seal, &rule, caller, now, request.dry_run)
            .await
            .map_err(|e| pdm_core::error::database("purging the access trail", &e))?;
        tracing::info!(
            run_id = %request.run_id,
            category = retention::CATEGORY,
            purged = done.purged,
            held = done.held,
            dry_run = request.dry_run,
            "access trail purge"
        );
        Ok(Some(pdm_proto::subject::v1::PurgeResult {
            category: retention::CATEGORY.to_owned(),
            purged: done.purged,
            held: done.held,
            hold_ids: if done.held > 0 {
                rule.hold_ids
            } else {
                Vec::new()
            },
        }))
    }

    /// Queues an entry.
    pub async fn record(&self, entry: AccessEntry) {
        if self.tx.send(entry).await.is_err() {
            tracing::warn!("access trail closed; an entry was not recorded");
        }
    }
}

async fn write(
    db: DatabaseConnection,
    service: &'static str,
    seal: Seal,
    mut rx: mpsc::Receiver<AccessEntry>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    // The head this writer wrote last, so the next batch need not read it.
    let mut head = None;
    loop {
        let stopping = tokio::select! {
            received = rx.recv() => match received {
                Some(entry) => { batch.push(entry); false }
                None => true,
            },
            () = stop.cancelled() => true,
        };
        while batch.len() < BATCH
            && let Ok(entry) = rx.try_recv()
        {
            batch.push(entry);
        }
        append_with_retries(&db, service, &seal, &batch, &mut head).await;
        batch.clear();
        if stopping {
            // What was queued before the stop is written too.
            while let Ok(entry) = rx.try_recv() {
                batch.push(entry);
                if batch.len() == BATCH {
                    append_with_retries(&db, service, &seal, &batch, &mut head).await;
                    batch.clear();
                }
            }
            append_with_retries(&db, service, &seal, &batch, &mut head).await;
            return;
        }
    }
}

/// Appends `batch` after `head` (the head this writer wrote last, updated), or after
/// the stored head when that moved or is not known.
async fn append_after_head(
    db: &DatabaseConnection,
    seal: &Seal,
    batch: &[AccessEntry],
    head: &mut Option<store::Head>,
) -> Result<(), sea_orm::DbErr> {
    if let Some(known) = head.take()
        && let Some(moved) = store::append_after(db, seal, &known, batch).await?
    {
        *head = Some(moved);
        return Ok(());
    }
    *head = store::append(db, seal, batch).await?;
    Ok(())
}

async fn append_with_retries(
    db: &DatabaseConnection,
    service: &'static str,
    seal: &Seal,
    batch: &[AccessEntry],
    head: &mut Option<store::Head>,
) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=8 {
        match append_after_head(db, seal, batch, head).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(
                    service,
                    attempt,
                    error = %pdm_core::error::db_error_kind(&err),
                    "could not append to the access trail; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(
        service,
        entries = batch.len(),
        "access trail entries lost: the database refused them eight times"
    );
}
