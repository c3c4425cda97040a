//! The `transfer_log` table: every decision, allowed or denied.

use sea_orm::entity::prelude::*;

/// A logged decision.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transfer_log")]
pub struct Model {
    /// Id (UUIDv7: time-ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub log_id: String,
    /// Recipient.
    pub recipient_id: String,
    /// Recipient name at the time.
    pub recipient_name: String,
    /// Country.
    pub country: String,
    /// `Regime` name.
    pub regime: String,
    /// Purpose.
    pub purpose: String,
    /// JSON list of categories.
    pub data_categories: String,
    /// Subject id, or its pseudonym after erasure.
    pub subject_id: Option<String>,
    /// Allowed.
    pub allowed: bool,
    /// `Outcome` name.
    pub outcome: String,
    /// Mechanism.
    pub mechanism_id: Option<String>,
    /// `MechanismKind` name.
    pub mechanism_kind: Option<String>,
    /// Detail.
    pub detail: String,
    /// Caller's reference.
    pub reference: String,
    /// Decided.
    pub decided_at: ChronoDateTimeUtc,
    /// The law a disclosure to an authority rests on.
    pub legal_basis: Option<String>,
    /// The order's reference.
    pub order_reference: Option<String>,
    /// Who issued the order.
    pub order_issued_by: Option<String>,
    /// Until when the subject may not be told of it.
    pub secret_until: Option<ChronoDateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
