//! The consent service as typed calls: decisions as [`Decision`], writes as [`Written`]
//! with their consistency token, errors as [`PdmError`].

use std::time::Duration;

use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{
        self as pb, Channel as ContactChannel, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
};
use tonic::{Streaming, transport::Channel};

use crate::{
    call::Stub,
    error::PdmError,
    retry::{Idempotence, RetryPolicy},
};

/// A ledger position returned by a write: given back as `at_least`, the answer reflects
/// that write on whichever replica answers (read-your-writes). Opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsistencyToken(String);

impl ConsistencyToken {
    /// A token as received (e.g. passed along from another service).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A decision of the consent service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether processing (or the message) may go ahead.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The legal basis it rests on (or would).
    pub legal_basis: LegalBasis,
}

impl Decision {
    fn from_pb(decision: Option<pb::Decision>) -> Result<Self, PdmError> {
        let d = decision.ok_or_else(|| crate::call::missing("decision"))?;
        Ok(Self {
            allowed: d.allowed,
            reason: Reason::try_from(d.reason).unwrap_or(Reason::Unspecified),
            legal_basis: LegalBasis::try_from(d.legal_basis).unwrap_or(LegalBasis::Unspecified),
        })
    }
}

/// What a write recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Its ledger position.
    pub sequence: i64,
    /// Its consistency token.
    pub token: ConsistencyToken,
}

/// A grant of consent, as shown to the person.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Whose consent.
    pub subject_id: String,
    /// For which purpose (`marketing_email`).
    pub purpose: String,
    /// The policy version the person saw.
    pub policy_version: String,
    /// SHA-256 (hex) of the exact text shown.
    pub text_hash: String,
    /// Who records it (the calling system).
    pub actor: String,
}

/// The consent service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsentClient {
    stub: Stub<ConsentServiceClient<Channel>>,
}

impl ConsentClient {
    /// Calls over `channel`, each within `timeout` (retries included).
    pub fn new(channel: Channel, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            stub: Stub::new(ConsentServiceClient::new(channel), timeout, retry),
        }
    }

    fn written(entry: Option<pb::LedgerEntry>, token: String) -> Written {
        Written {
            sequence: entry.map_or(0, |e| e.sequence),
            token: ConsistencyToken(token),
        }
    }

    /// Records consent (GrantConsent, source API).
    pub async fn grant(&self, grant: &Grant) -> Result<Written, PdmError> {
        let message = pb::GrantConsentRequest {
            subject_id: grant.subject_id.clone(),
            purpose: grant.purpose.clone(),
            source: Source::Api as i32,
            policy_version: grant.policy_version.clone(),
            text_hash: grant.text_hash.clone(),
            actor: grant.actor.clone(),
            occurred_at: None,
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.grant_consent(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// Records a withdrawal (WithdrawConsent, source API).
    pub async fn withdraw(
        &self,
        subject_id: &str,
        purpose: &str,
        actor: &str,
    ) -> Result<Written, PdmError> {
        let message = pb::WithdrawConsentRequest {
            subject_id: subject_id.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::Api as i32,
            actor: actor.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.withdraw_consent(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// Opts the subject out of (or back into) promotional messages on `channel`.
    pub async fn set_contact_preference(
        &self,
        subject_id: &str,
        channel: ContactChannel,
        opted_out: bool,
        actor: &str,
    ) -> Result<Written, PdmError> {
        let message = pb::SetContactPreferenceRequest {
            subject_id: subject_id.to_owned(),
            channel: channel as i32,
            opted_out,
            source: Source::Api as i32,
            actor: actor.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.set_contact_preference(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// Whether the subject's data may be processed for `purpose`; with `at_least`, as of
    /// that write at the latest.
    pub async fn check(
        &self,
        subject_id: &str,
        purpose: &str,
        at_least: Option<&ConsistencyToken>,
    ) -> Result<Decision, PdmError> {
        let message = pb::CheckProcessingRequest {
            subject_id: subject_id.to_owned(),
            purpose: purpose.to_owned(),
            at_least: at_least.map(|t| t.0.clone()).unwrap_or_default(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.check_processing(r).await
            })
            .await?;
        Decision::from_pb(r.decision)
    }

    /// Many checks in one call (at most 10,000), decisions in order.
    pub async fn check_many(
        &self,
        pairs: &[(String, String)],
        at_least: Option<&ConsistencyToken>,
    ) -> Result<Vec<Decision>, PdmError> {
        let message = pb::BatchCheckProcessingRequest {
            items: pairs
                .iter()
                .map(|(subject_id, purpose)| pb::CheckItem {
                    subject_id: subject_id.clone(),
                    purpose: purpose.clone(),
                })
                .collect(),
            at_least: at_least.map(|t| t.0.clone()).unwrap_or_default(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.batch_check_processing(r).await
            })
            .await?;
        if r.decisions.len() != pairs.len() {
            return Err(PdmError::Other(tonic::Status::internal(
                "a batch answered a different number of decisions",
            )));
        }
        r.decisions
            .into_iter()
            .map(|d| Decision::from_pb(Some(d)))
            .collect()
    }

    /// Whether a message of `kind` may be sent to the subject on `channel`.
    pub async fn can_contact(
        &self,
        subject_id: &str,
        channel: ContactChannel,
        kind: MessageKind,
        at_least: Option<&ConsistencyToken>,
    ) -> Result<Decision, PdmError> {
        let message = pb::CanContactRequest {
            subject_id: subject_id.to_owned(),
            channel: channel as i32,
            kind: kind as i32,
            at_least: at_least.map(|t| t.0.clone()).unwrap_or_default(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.can_contact(r).await
            })
            .await?;
        Decision::from_pb(r.decision)
    }

    /// The ledger's last position, and the token that covers every write before now.
    pub async fn ledger_position(&self) -> Result<Written, PdmError> {
        let r = self
            .stub
            .call(
                Idempotence::Idempotent,
                pb::GetLedgerPositionRequest {},
                |mut c, r| async move { c.get_ledger_position(r).await },
            )
            .await?;
        Ok(Written {
            sequence: r.sequence,
            token: ConsistencyToken(r.consistency_token),
        })
    }

    /// The ledger's changes after `after_sequence`, then live ones (no deadline: the
    /// stream lasts until it is dropped or the connection ends).
    pub async fn watch(
        &self,
        after_sequence: i64,
    ) -> Result<Streaming<pb::WatchConsentChangesResponse>, PdmError> {
        self.stub
            .open(
                pb::WatchConsentChangesRequest { after_sequence },
                |mut c, r| async move { c.watch_consent_changes(r).await },
            )
            .await
    }
}
