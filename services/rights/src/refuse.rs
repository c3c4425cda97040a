//! Refusing a request: closed as DENIED with its reasons, the subject told the reasons
//! and where to complain, and the address it was told at forgotten, in one transaction (rules: [`crate::domain::refusal`]). Used by
//! DenyRequest (the privacy team) and by the worker when a service refuses a task.

use chrono::{DateTime, Utc};
use pdm_crypto::DataKey;
use pdm_proto::rights::v1::Regime;

use crate::{
    domain::refusal,
    error::Result,
    outbox::Outbox,
    peers::Peers,
    store::{Store, Told, entities::request},
};

/// The outbox topic of a refusal.
pub const TOPIC: &str = "refused";

/// Where to write to the request's subject: the address the request holds, else the one
/// on the account it names (a request refused before verification is told too); UNAVAILABLE
/// when identity does not answer, so a refusal is never stored untold for that. `key` is
/// the request's.
pub async fn address(peers: &Peers, key: &DataKey, req: &request::Model) -> Result<Option<String>> {
    if let Some(email) = Outbox::address(key, req)? {
        return Ok(Some(email));
    }
    match &req.subject_id {
        Some(subject) => peers
            .account_email(subject)
            .await
            .map_err(|_| crate::error::RightsError::Unavailable("identity")),
        None => Ok(None),
    }
}

/// Refuses `req` (sealed with `key`) for `reasons` (already validated, at least one);
/// false when it was no longer open.
pub async fn refuse(
    store: &Store,
    outbox: &Outbox,
    peers: &Peers,
    key: &DataKey,
    req: &request::Model,
    reasons: &[String],
    now: DateTime<Utc>,
) -> Result<bool> {
    let regime = Regime::from_str_name(&req.regime).unwrap_or_default();
    let message = match address(peers, key, req).await? {
        Some(email) => {
            let body = refusal::message(&req.request_id, regime, reasons);
            Some(outbox.compose(key, req, &email, TOPIC, &body, now).await?)
        }
        None => {
            tracing::warn!(request_id = %req.request_id, "request refused with no address to tell the subject");
            None
        }
    };
    let told = Told {
        message,
        forgotten: Outbox::without_contact(key, req)?,
    };
    let closed = store
        .deny(&req.request_id, &refusal::join(reasons), told, now)
        .await?;
    if closed {
        tracing::info!(request_id = %req.request_id, reasons = reasons.len(), "request refused");
    }
    Ok(closed)
}
