//! The `mechanisms` table.

use sea_orm::entity::prelude::*;

/// A transfer mechanism.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mechanisms")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub mechanism_id: String,
    /// Recipient.
    pub recipient_id: String,
    /// `MechanismKind` name.
    pub kind: String,
    /// JSON list of `Regime` names.
    pub regimes: String,
    /// SCC module.
    pub scc_module: Option<i32>,
    /// `PartyRole` name.
    pub exporter_role: String,
    /// Signing date.
    pub signed_on: String,
    /// JSON list of parties.
    pub parties: String,
    /// JSON list of annex references.
    pub annex_references: String,
    /// Validity start.
    pub valid_from: ChronoDateTimeUtc,
    /// Validity end.
    pub expires_at: Option<ChronoDateTimeUtc>,
    /// Review date.
    pub review_due: Option<ChronoDateTimeUtc>,
    /// `MechanismStatus` name.
    pub status: String,
    /// JSON list of purposes covered.
    pub purposes: String,
    /// JSON list of categories covered.
    pub data_categories: String,
    /// TIA reference.
    pub tia_reference: Option<String>,
    /// TIA date.
    pub tia_assessed_on: Option<String>,
    /// `TiaOutcome` name.
    pub tia_outcome: Option<String>,
    /// JSON list of supplementary measures.
    pub tia_measures: String,
    /// Derogation for occasional transfers.
    pub occasional: bool,
    /// Recorded.
    pub created_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
