//! WatchConsentChanges: catch up from the ledger after the caller's cursor, then follow
//! live entries. The live subscription starts before the catch-up, and entries at or
//! below the cursor are skipped, so nothing is lost or sent twice; a watcher that falls
//! too far behind the live buffer catches up from the database again. A company client
//! sees each entry as `domain::watch_scope` allows (its linked subjects whole, erasures
//! under their pseudonym, anyone else's entry as its sequence alone).

use std::{pin::Pin, sync::Arc};

use pdm_proto::consent::v1::{LedgerEntry, LedgerEntryKind, WatchConsentChangesResponse};
use pdm_runtime::relationships::{Relationships, Scope};
use pdm_tls::identity::Caller;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use crate::{
    domain::watch_scope::{self, Watcher},
    ledger::Ledger,
    store::{Row, Store},
    subjects::ERASED_PREFIX,
};

/// The stream type of WatchConsentChanges.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<WatchConsentChangesResponse, Status>> + Send>>;

/// Entries read from the database per catch-up query.
const PAGE: u64 = 500;

/// The caller of one stream, and how to tell which subjects it is linked with.
#[derive(Debug)]
pub struct Viewer {
    /// Who called (none without a client certificate: treated as an unlinked client).
    pub caller: Option<Caller>,
    /// Identity's links, cached.
    pub relationships: Arc<Relationships>,
}

impl Viewer {
    /// `row` as this caller may see it; `UNAVAILABLE` when identity cannot say whether
    /// the caller is linked with the row's subject (the caller resumes from its cursor).
    async fn show(&self, row: Row) -> Result<LedgerEntry, Status> {
        let entry = convert::entry(row);
        let kind = LedgerEntryKind::try_from(entry.kind).unwrap_or(LedgerEntryKind::Unspecified);
        let pseudonymised = entry.subject_id.starts_with(ERASED_PREFIX);
        let watcher = match &self.caller {
            Some(Caller::Admin | Caller::Service(_)) => Watcher::Trusted,
            caller => {
                let ask = kind != LedgerEntryKind::Erased && !pseudonymised;
                let linked = ask
                    && self
                        .relationships
                        .scope(caller.as_ref(), &entry.subject_id)
                        .await?
                        == Scope::Allowed;
                Watcher::Client { linked }
            }
        };
        let view = watch_scope::view(watcher, kind, pseudonymised);
        Ok(watch_scope::shown(entry, view))
    }
}

/// Streams entries after `after` until the caller leaves or the server stops.
pub fn stream(
    store: Store,
    ledger: Ledger,
    after: i64,
    viewer: Viewer,
    stop: CancellationToken,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        tokio::select! {
            () = pump(store, ledger, after, &viewer, &tx) => {}
            () = stop.cancelled() => {}
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Sends `row` as `viewer` may see it; false when the stream is over.
async fn send(
    viewer: &Viewer,
    row: Row,
    tx: &mpsc::Sender<Result<WatchConsentChangesResponse, Status>>,
) -> bool {
    let message = viewer
        .show(row)
        .await
        .map(|entry| WatchConsentChangesResponse { entry: Some(entry) });
    let failed = message.is_err();
    tx.send(message).await.is_ok() && !failed
}

async fn pump(
    store: Store,
    ledger: Ledger,
    mut cursor: i64,
    viewer: &Viewer,
    tx: &mpsc::Sender<Result<WatchConsentChangesResponse, Status>>,
) {
    loop {
        let mut live = ledger.subscribe();
        loop {
            let rows = match store.after(cursor, PAGE).await {
                Ok(rows) => rows,
                Err(err) => {
                    let _ = tx.send(Err(err.into())).await;
                    return;
                }
            };
            if rows.is_empty() {
                break;
            }
            for row in rows {
                cursor = row.seq;
                if !send(viewer, row, tx).await {
                    return;
                }
            }
        }
        loop {
            match live.recv().await {
                Ok(row) if row.seq > cursor => {
                    cursor = row.seq;
                    if !send(viewer, row.as_ref().clone(), tx).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}
