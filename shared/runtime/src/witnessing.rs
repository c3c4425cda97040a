//! The background job that has a service's head witnessed: every
//! `audit.witness_interval_ms`, when the head moved since it was last witnessed, it is
//! sent over gRPC (as this service, mutual TLS) to the next service of the ring that
//! answers ([`pdm_access_trail::witness::witnesses_of`]), which appends it to its own trail.

use std::time::Duration;

use pdm_proto::audit::v1::{WitnessHeadRequest, audit_service_client::AuditServiceClient};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::service::ServiceContext;
use pdm_access_trail::{store, witness::witnesses_of};

/// Has `ctx`'s head in `db` witnessed every `interval` by the services after it in
/// `ring`, until `stop` is cancelled.
pub async fn run(
    ctx: ServiceContext,
    db: DatabaseConnection,
    ring: Vec<String>,
    interval: Duration,
    stop: CancellationToken,
) {
    let witnesses: Vec<String> = witnesses_of(&ring, ctx.name)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if witnesses.is_empty() {
        tracing::info!(
            service = ctx.name,
            "no other service in audit.witness_ring: the access trail head is not witnessed"
        );
        return;
    }
    let mut witnessed: Option<(i64, Vec<u8>)> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let head = match store::head(&db).await {
            Ok(Some(head)) => head,
            // Nothing written yet: nothing to lose.
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(
                    service = ctx.name,
                    error = %crate::error::db_error_kind(&err),
                    "could not read the access trail head to have it witnessed"
                );
                continue;
            }
        };
        if witnessed.as_ref() == Some(&head) {
            continue;
        }
        if witness(&ctx, &witnesses, &head).await {
            witnessed = Some(head);
        }
    }
}

/// Sends `head` to the first witness that records it; false when none did.
async fn witness(ctx: &ServiceContext, witnesses: &[String], head: &(i64, Vec<u8>)) -> bool {
    for peer in witnesses {
        let sent = async {
            AuditServiceClient::new(ctx.channel(peer)?)
                .witness_head(WitnessHeadRequest {
                    seq: head.0,
                    mac: head.1.clone(),
                })
                .await
                .map_err(anyhow::Error::from)
        }
        .await;
        match sent {
            Ok(_) => {
                tracing::debug!(service = ctx.name, witness = %peer, seq = head.0, "head witnessed");
                return true;
            }
            Err(err) => tracing::warn!(
                service = ctx.name,
                witness = %peer,
                error = %err,
                "a witness did not record the access trail head; trying the next"
            ),
        }
    }
    tracing::warn!(
        service = ctx.name,
        "no witness recorded the access trail head this round"
    );
    false
}
