//! WatchConsentChanges: catch up from the ledger after the caller's cursor, then follow
//! live entries. The live subscription starts before the catch-up, and entries at or
//! below the cursor are skipped, so nothing is lost or sent twice; a watcher that falls
//! too far behind the live buffer catches up from the database again.

use std::pin::Pin;

use pdm_proto::consent::v1::WatchConsentChangesResponse;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use crate::{ledger::Ledger, store::Store};

/// The stream type of WatchConsentChanges.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<WatchConsentChangesResponse, Status>> + Send>>;

/// Entries read from the database per catch-up query.
const PAGE: u64 = 500;

/// Streams entries after `after` until the caller leaves or the server stops.
pub fn stream(store: Store, ledger: Ledger, after: i64, stop: CancellationToken) -> WatchStream {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        tokio::select! {
            () = pump(store, ledger, after, &tx) => {}
            () = stop.cancelled() => {}
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

async fn pump(
    store: Store,
    ledger: Ledger,
    mut cursor: i64,
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
                let message = WatchConsentChangesResponse {
                    entry: Some(convert::entry(row)),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            match live.recv().await {
                Ok(row) if row.seq > cursor => {
                    cursor = row.seq;
                    let message = WatchConsentChangesResponse {
                        entry: Some(convert::entry(row.as_ref().clone())),
                    };
                    if tx.send(Ok(message)).await.is_err() {
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
