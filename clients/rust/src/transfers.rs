//! The transfers service as typed calls: ask before a transfer ([`TransfersClient::authorize`],
//! every decision logged), and read the register of recipients, their mechanisms and the
//! adequacy lists. Errors as [`PdmError`]: a bad field is `InvalidArgument`, an unknown
//! recipient (or a subject this client is not linked with) `NotFound`.
//! Registering recipients and mechanisms is the privacy team's (`pdm` command line).

use std::time::{Duration, SystemTime};

use pdm_proto::transfers::v1::{self as pb, transfers_service_client::TransfersServiceClient};
/// The enums of the transfers contract, as generated.
pub use pdm_proto::transfers::v1::{
    MechanismKind, MechanismStatus, Outcome, PartyRole, RecipientRole, Regime, TiaOutcome,
};
use tonic::transport::Channel;

use crate::{
    call::{Stub, missing, nonempty, time},
    error::PdmError,
    retry::{Idempotence, RetryPolicy},
};

/// The legal order behind a disclosure to a public authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalOrder {
    /// The law or provision it rests on (1-200 characters, one line).
    pub legal_basis: String,
    /// The order's reference (1-200 characters).
    pub order_reference: String,
    /// Who issued it.
    pub issued_by: Option<String>,
    /// Until when the law forbids telling the subject.
    pub secret_until: Option<SystemTime>,
}

/// A transfer to ask about.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The regime the data is exported from.
    pub regime: Regime,
    /// The recipient's id.
    pub recipient_id: String,
    /// Data categories (at least one).
    pub data_categories: Vec<String>,
    /// Purpose key.
    pub purpose: String,
    /// The subject, when it concerns one (required for an independent controller and a
    /// consent derogation).
    pub subject_id: Option<String>,
    /// Our role as exporter (`Unspecified`: controller).
    pub exporter_role: PartyRole,
    /// Our reference for the transfer (one line of at most 200 characters), logged.
    pub reference: String,
    /// Required for a public authority, refused for anyone else.
    pub legal_order: Option<LegalOrder>,
}

/// The answer to [`TransfersClient::authorize`], as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferDecision {
    /// The log entry's id.
    pub log_id: String,
    /// Whether the transfer may go ahead.
    pub allowed: bool,
    /// Why.
    pub outcome: Outcome,
    /// The mechanism that covers it, or the best candidate examined.
    pub mechanism_id: Option<String>,
    /// Its kind.
    pub mechanism_kind: MechanismKind,
    /// Human-readable detail (e.g. the adequacy source).
    pub detail: String,
    /// When decided.
    pub decided_at: Option<SystemTime>,
}

/// An entry of the recipients register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Server-assigned id.
    pub recipient_id: String,
    /// Stable key.
    pub key: String,
    /// Legal name.
    pub name: String,
    /// What the recipient is to us.
    pub role: RecipientRole,
    /// ISO 3166-1 alpha-2 country where the data goes.
    pub country: String,
    /// Purposes it receives data for.
    pub purposes: Vec<String>,
    /// Data categories it receives.
    pub data_categories: Vec<String>,
    /// Contract or DPA reference.
    pub contract_reference: String,
    /// Date of the contract (YYYY-MM-DD).
    pub contract_date: String,
    /// Certifications relevant to adequacy, e.g. `EU-US DPF`.
    pub certifications: Vec<String>,
}

impl Recipient {
    fn from_pb(r: pb::Recipient) -> Self {
        Self {
            role: r.role(),
            recipient_id: r.recipient_id,
            key: r.key,
            name: r.name,
            country: r.country,
            purposes: r.purposes,
            data_categories: r.data_categories,
            contract_reference: r.contract_reference,
            contract_date: r.contract_date,
            certifications: r.certifications,
        }
    }
}

/// The transfer impact assessment behind an SCC or IDTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactAssessment {
    /// Reference of the assessment document.
    pub reference: String,
    /// Date (YYYY-MM-DD).
    pub assessed_on: String,
    /// Conclusion.
    pub outcome: TiaOutcome,
    /// Supplementary measures.
    pub supplementary_measures: Vec<String>,
}

/// A transfer mechanism of a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    /// Server-assigned id.
    pub mechanism_id: String,
    /// The recipient.
    pub recipient_id: String,
    /// The legal tool.
    pub kind: MechanismKind,
    /// Regimes it serves.
    pub regimes: Vec<Regime>,
    /// SCC module 1-4 (0: none).
    pub scc_module: i32,
    /// Our role as exporter.
    pub exporter_role: PartyRole,
    /// Date signed (YYYY-MM-DD).
    pub signed_on: String,
    /// Parties.
    pub parties: Vec<String>,
    /// Annex references.
    pub annex_references: Vec<String>,
    /// Start of validity.
    pub valid_from: Option<SystemTime>,
    /// End of validity.
    pub expires_at: Option<SystemTime>,
    /// When it must be reviewed.
    pub review_due: Option<SystemTime>,
    /// Whether it is in force.
    pub status: MechanismStatus,
    /// Purposes covered (empty: every purpose of the recipient).
    pub purposes: Vec<String>,
    /// Data categories covered (empty: every category of the recipient).
    pub data_categories: Vec<String>,
    /// The impact assessment.
    pub tia: Option<ImpactAssessment>,
    /// Derogations only: transfers must be occasional.
    pub occasional: bool,
}

impl Mechanism {
    fn from_pb(m: pb::Mechanism) -> Self {
        Self {
            kind: m.kind(),
            regimes: m.regimes().collect(),
            exporter_role: m.exporter_role(),
            status: m.status(),
            mechanism_id: m.mechanism_id,
            recipient_id: m.recipient_id,
            scc_module: m.scc_module,
            signed_on: m.signed_on,
            parties: m.parties,
            annex_references: m.annex_references,
            valid_from: time(m.valid_from),
            expires_at: time(m.expires_at),
            review_due: time(m.review_due),
            purposes: m.purposes,
            data_categories: m.data_categories,
            tia: m.tia.map(|t| ImpactAssessment {
                outcome: t.outcome(),
                reference: t.reference,
                assessed_on: t.assessed_on,
                supplementary_measures: t.supplementary_measures,
            }),
            occasional: m.occasional,
        }
    }
}

/// Which date of a mechanism is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// It expires.
    Expires,
    /// It must be reviewed.
    Review,
}

/// A mechanism due for expiry or review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringMechanism {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The recipient's name.
    pub recipient_name: String,
    /// What is due.
    pub due: Due,
    /// When.
    pub due_at: Option<SystemTime>,
    /// Whether the date has passed.
    pub overdue: bool,
}

/// A destination on an adequacy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdequateCountry {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// A certification the recipient must hold (e.g. `EU-US DPF`).
    pub requires_certification: Option<String>,
}

/// A regime's adequacy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdequacyList {
    /// The exporting regime.
    pub regime: Regime,
    /// Where the list comes from.
    pub source: String,
    /// Date of the source (YYYY-MM-DD).
    pub as_of: String,
    /// Destinations.
    pub countries: Vec<AdequateCountry>,
}

/// The transfers service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TransfersClient {
    stub: Stub<TransfersServiceClient<Channel>>,
}

impl TransfersClient {
    /// Calls over `channel`, each within `timeout` (retries included).
    pub fn new(channel: Channel, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            stub: Stub::new(TransfersServiceClient::new(channel), timeout, retry),
        }
    }

    /// Whether a transfer may go ahead (AuthorizeTransfer). Every call logs a decision,
    /// so it is not retried after UNAVAILABLE.
    pub async fn authorize(&self, transfer: &Transfer) -> Result<TransferDecision, PdmError> {
        let message = pb::AuthorizeTransferRequest {
            regime: transfer.regime as i32,
            recipient_id: transfer.recipient_id.clone(),
            data_categories: transfer.data_categories.clone(),
            purpose: transfer.purpose.clone(),
            subject_id: transfer.subject_id.clone().unwrap_or_default(),
            exporter_role: transfer.exporter_role as i32,
            reference: transfer.reference.clone(),
            legal_order: transfer.legal_order.as_ref().map(|o| pb::LegalOrder {
                legal_basis: o.legal_basis.clone(),
                order_reference: o.order_reference.clone(),
                issued_by: o.issued_by.clone().unwrap_or_default(),
                secret_until: o.secret_until.map(Into::into),
            }),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.authorize_transfer(r).await
            })
            .await?;
        let d = r.decision.ok_or_else(|| missing("decision"))?;
        Ok(TransferDecision {
            outcome: d.outcome(),
            mechanism_kind: d.mechanism_kind(),
            log_id: d.log_id,
            allowed: d.allowed,
            mechanism_id: nonempty(d.mechanism_id),
            detail: d.detail,
            decided_at: time(d.decided_at),
        })
    }

    /// The register (optionally of one `country`), or with `subject_id` the recipients
    /// that subject's data went to (empty for a subject this client is not linked with).
    pub async fn list_recipients(
        &self,
        subject_id: Option<&str>,
        country: Option<&str>,
    ) -> Result<Vec<Recipient>, PdmError> {
        let message = pb::ListRecipientsRequest {
            subject_id: subject_id.unwrap_or_default().to_owned(),
            country: country.unwrap_or_default().to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.list_recipients(r).await
            })
            .await?;
        Ok(r.recipients.into_iter().map(Recipient::from_pb).collect())
    }

    /// Mechanisms, optionally of one recipient.
    pub async fn list_mechanisms(
        &self,
        recipient_id: Option<&str>,
    ) -> Result<Vec<Mechanism>, PdmError> {
        let message = pb::ListMechanismsRequest {
            recipient_id: recipient_id.unwrap_or_default().to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.list_mechanisms(r).await
            })
            .await?;
        Ok(r.mechanisms.into_iter().map(Mechanism::from_pb).collect())
    }

    /// Active mechanisms whose expiry or review is due within `within_days` (0-3650) or
    /// already passed, soonest first.
    pub async fn list_expiring_mechanisms(
        &self,
        within_days: i32,
    ) -> Result<Vec<ExpiringMechanism>, PdmError> {
        let message = pb::ListExpiringMechanismsRequest { within_days };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.list_expiring_mechanisms(r).await
            })
            .await?;
        r.mechanisms
            .into_iter()
            .map(|e| {
                let mechanism = e.mechanism.ok_or_else(|| missing("mechanism"))?;
                let due = match e.due.as_str() {
                    "expires" => Due::Expires,
                    "review" => Due::Review,
                    _ => return Err(missing("known due date")),
                };
                Ok(ExpiringMechanism {
                    mechanism: Mechanism::from_pb(mechanism),
                    recipient_name: e.recipient_name,
                    due,
                    due_at: time(e.due_at),
                    overdue: e.overdue,
                })
            })
            .collect()
    }

    /// The adequacy lists in force, one per restricted regime.
    pub async fn list_adequacy(&self) -> Result<Vec<AdequacyList>, PdmError> {
        let r = self
            .stub
            .call(
                Idempotence::Idempotent,
                pb::ListAdequacyRequest {},
                |mut c, r| async move { c.list_adequacy(r).await },
            )
            .await?;
        Ok(r.lists
            .into_iter()
            .map(|l| AdequacyList {
                regime: l.regime(),
                source: l.source,
                as_of: l.as_of,
                countries: l
                    .entries
                    .into_iter()
                    .map(|e| AdequateCountry {
                        country: e.country,
                        requires_certification: nonempty(e.requires_certification),
                    })
                    .collect(),
            })
            .collect())
    }
}
