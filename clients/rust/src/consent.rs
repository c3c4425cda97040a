//! The consent service as typed calls: decisions as [`Decision`], writes as [`Written`]
//! with their consistency token, the catalogue as [`Purpose`], a subject's state as
//! [`Consents`] and its proof as [`LedgerEntry`] pages, errors as [`PdmError`].

use std::time::{Duration, SystemTime};

/// The region of residence and the legal bases (shared by every contract).
pub use pdm_proto::common::v1::{LegalBasis, Region};
use pdm_proto::consent::v1::{
    self as pb, Channel as ContactChannel, MessageKind, Reason,
    consent_service_client::ConsentServiceClient,
};
/// The consent contract's enums, as generated.
pub use pdm_proto::consent::v1::{ConsentStatus, LedgerEntryKind, Source};
use tonic::{Streaming, transport::Channel};

use crate::{
    call::{Stub, missing, nonempty, time},
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
        let d = decision.ok_or_else(|| missing("decision"))?;
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

/// One purpose of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// Stable key (`marketing_email`).
    pub key: String,
    /// What the processing is for.
    pub description: String,
    /// Data categories processed.
    pub data_categories: Vec<String>,
    /// The legal basis in each region.
    pub legal_bases: Vec<(Region, LegalBasis)>,
    /// Whether the subject can refuse it (it rests on consent somewhere).
    pub refusable: bool,
    /// Whether the subject can object to it.
    pub objectable: bool,
    /// Whether it is direct marketing (an objection to it is absolute).
    pub direct_marketing: bool,
    /// Whether it processes a special category (only explicit consent counts).
    pub special_category: bool,
}

impl Purpose {
    /// The legal basis in `region` (`Unspecified` when the catalogue names none).
    pub fn legal_basis_in(&self, region: Region) -> LegalBasis {
        self.legal_bases
            .iter()
            .find(|(r, _)| *r == region)
            .map_or(LegalBasis::Unspecified, |(_, b)| *b)
    }
}

/// A subject's state for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeState {
    /// The purpose's key.
    pub purpose: String,
    /// Its legal basis in the subject's region.
    pub legal_basis: LegalBasis,
    /// Where consent stands.
    pub consent: ConsentStatus,
    /// Whether the subject objected.
    pub objected: bool,
    /// The decision a check would give now.
    pub decision: Decision,
}

/// A subject's current state (GetConsents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consents {
    /// The subject.
    pub subject_id: String,
    /// The region, from identity.
    pub region: Region,
    /// One state per purpose of the catalogue.
    pub purposes: Vec<PurposeState>,
    /// Whether processing is restricted.
    pub restricted: bool,
    /// Whether sale and sharing are refused.
    pub do_not_sell: bool,
    /// The channels opted out of promotional messages.
    pub opted_out_channels: Vec<ContactChannel>,
}

impl Consents {
    /// The state for `purpose`, if the catalogue has it.
    pub fn purpose(&self, purpose: &str) -> Option<&PurposeState> {
        self.purposes.iter().find(|p| p.purpose == purpose)
    }
}

/// One immutable entry of the ledger: the proof of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Its position in the ledger.
    pub sequence: i64,
    /// The subject (a pseudonym, `erased:…`, once erased).
    pub subject_id: String,
    /// What happened.
    pub kind: LedgerEntryKind,
    /// The purpose, for consent and objection entries.
    pub purpose: Option<String>,
    /// The channel, for opt-outs and opt-ins.
    pub channel: Option<ContactChannel>,
    /// How the change reached pdm.
    pub source: Source,
    /// The policy version shown, for grants.
    pub policy_version: Option<String>,
    /// SHA-256 (hex) of the text shown, for grants.
    pub text_hash: Option<String>,
    /// Who recorded it (none once erased).
    pub actor: Option<String>,
    /// When it happened.
    pub occurred_at: Option<SystemTime>,
    /// When it was recorded.
    pub recorded_at: Option<SystemTime>,
}

impl LedgerEntry {
    fn from_pb(e: pb::LedgerEntry) -> Self {
        let channel = e.channel();
        Self {
            kind: e.kind(),
            source: e.source(),
            channel: (channel != ContactChannel::Unspecified).then_some(channel),
            sequence: e.sequence,
            subject_id: e.subject_id,
            purpose: nonempty(e.purpose),
            policy_version: nonempty(e.policy_version),
            text_hash: nonempty(e.text_hash),
            actor: nonempty(e.actor),
            occurred_at: time(e.occurred_at),
            recorded_at: time(e.recorded_at),
        }
    }
}

/// A page of a subject's ledger, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The entries.
    pub entries: Vec<LedgerEntry>,
    /// Where the next page starts (give it as `after_sequence`); none at the end.
    pub next_after_sequence: Option<i64>,
}

/// The token of an unsubscribe link for one promotional message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeLink {
    /// Put it in the link as it is (URL-safe, at most 128 characters; names no one).
    pub token: String,
    /// When it stops working.
    pub expires_at: Option<SystemTime>,
}

/// What following an unsubscribe link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The channel opted out of.
    pub channel: ContactChannel,
    /// Whether the link had been used before (the opt-out was recorded then).
    pub already_used: bool,
    /// The opt-out's ledger position (0 when already used) and a token covering it.
    pub written: Written,
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

    /// Sets (`true`) or clears the CCPA "do not sell or share" choice (SetDoNotSell,
    /// source API; not retried after UNAVAILABLE).
    pub async fn set_do_not_sell(
        &self,
        subject_id: &str,
        do_not_sell: bool,
        actor: &str,
    ) -> Result<Written, PdmError> {
        let message = pb::SetDoNotSellRequest {
            subject_id: subject_id.to_owned(),
            do_not_sell,
            source: Source::Api as i32,
            actor: actor.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.set_do_not_sell(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// Restricts processing (`true`, Art. 18 GDPR) or lifts the restriction
    /// (SetRestriction, source API; not retried after UNAVAILABLE).
    pub async fn set_restriction(
        &self,
        subject_id: &str,
        restricted: bool,
        actor: &str,
    ) -> Result<Written, PdmError> {
        let message = pb::SetRestrictionRequest {
            subject_id: subject_id.to_owned(),
            restricted,
            source: Source::Api as i32,
            actor: actor.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.set_restriction(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// Records an objection to `purpose` (right to object), or with `withdraw` takes an
    /// earlier one back (RecordObjection, source API; not retried after UNAVAILABLE). A
    /// purpose that cannot be objected to is `FailedPrecondition`.
    pub async fn record_objection(
        &self,
        subject_id: &str,
        purpose: &str,
        withdraw: bool,
        actor: &str,
    ) -> Result<Written, PdmError> {
        let message = pb::RecordObjectionRequest {
            subject_id: subject_id.to_owned(),
            purpose: purpose.to_owned(),
            withdraw,
            source: Source::Api as i32,
            actor: actor.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.record_objection(r).await
            })
            .await?;
        Ok(Self::written(r.entry, r.consistency_token))
    }

    /// The purpose catalogue, with each purpose's legal basis per region.
    pub async fn list_purposes(&self) -> Result<Vec<Purpose>, PdmError> {
        let r = self
            .stub
            .call(
                Idempotence::Idempotent,
                pb::ListPurposesRequest {},
                |mut c, r| async move { c.list_purposes(r).await },
            )
            .await?;
        Ok(r.purposes
            .into_iter()
            .map(|p| Purpose {
                legal_bases: p
                    .legal_bases
                    .iter()
                    .map(|b| (b.region(), b.legal_basis()))
                    .collect(),
                key: p.key,
                description: p.description,
                data_categories: p.data_categories,
                refusable: p.refusable,
                objectable: p.objectable,
                direct_marketing: p.direct_marketing,
                special_category: p.special_category,
            })
            .collect())
    }

    /// The subject's current state for every purpose, restriction, do-not-sell and
    /// opt-outs.
    pub async fn get_consents(&self, subject_id: &str) -> Result<Consents, PdmError> {
        let message = pb::GetConsentsRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_consents(r).await
            })
            .await?;
        let (region, opted_out_channels) = (r.region(), r.opted_out_channels().collect());
        let purposes = r
            .purposes
            .into_iter()
            .map(|p| {
                Ok(PurposeState {
                    legal_basis: p.legal_basis(),
                    consent: p.consent(),
                    objected: p.objected,
                    decision: Decision::from_pb(p.decision)?,
                    purpose: p.purpose,
                })
            })
            .collect::<Result<_, PdmError>>()?;
        Ok(Consents {
            region,
            opted_out_channels,
            subject_id: r.subject_id,
            purposes,
            restricted: r.restricted,
            do_not_sell: r.do_not_sell,
        })
    }

    /// A page of the subject's ledger entries after `after_sequence` (0: from the
    /// start), oldest first; `page_size` 1-1000, 0 for the server's 100.
    pub async fn get_consent_history(
        &self,
        subject_id: &str,
        after_sequence: i64,
        page_size: u32,
    ) -> Result<HistoryPage, PdmError> {
        let message = pb::GetConsentHistoryRequest {
            subject_id: subject_id.to_owned(),
            after_sequence,
            // Beyond i32 is beyond the limit: the service names the field.
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_consent_history(r).await
            })
            .await?;
        Ok(HistoryPage {
            entries: r.entries.into_iter().map(LedgerEntry::from_pb).collect(),
            next_after_sequence: (r.next_after_sequence != 0).then_some(r.next_after_sequence),
        })
    }

    /// The token of an unsubscribe link for one promotional message on `channel`
    /// (EMAIL, SMS or PUSH). Each call stores a link of its own: not retried after
    /// UNAVAILABLE.
    pub async fn issue_unsubscribe_link(
        &self,
        subject_id: &str,
        channel: ContactChannel,
    ) -> Result<UnsubscribeLink, PdmError> {
        let message = pb::IssueUnsubscribeLinkRequest {
            subject_id: subject_id.to_owned(),
            channel: channel as i32,
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.issue_unsubscribe_link(r).await
            })
            .await?;
        Ok(UnsubscribeLink {
            token: r.token,
            expires_at: time(r.expires_at),
        })
    }

    /// Records the opt-out an unsubscribe link stands for (the token is the authority).
    /// Retried like a read: a link presented again answers `already_used` and writes
    /// nothing. An expired link is `FailedPrecondition`; a forged or altered one
    /// `InvalidArgument`; one of an erased subject `NotFound`.
    pub async fn unsubscribe(&self, token: &str) -> Result<Unsubscribed, PdmError> {
        let message = pb::UnsubscribeRequest {
            token: token.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.unsubscribe(r).await
            })
            .await?;
        let channel = r.channel();
        if channel == ContactChannel::Unspecified {
            return Err(missing("channel"));
        }
        Ok(Unsubscribed {
            channel,
            already_used: r.already_used,
            written: Self::written(r.entry, r.consistency_token),
        })
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
