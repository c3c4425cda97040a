//! The `consent_events` table: the ledger.

use sea_orm::entity::prelude::*;

/// One ledger entry.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_events")]
pub struct Model {
    /// Position in the ledger.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// Subject id, or `erased:<blind index>` after erasure.
    pub subject_id: String,
    /// `LedgerEntryKind` name.
    pub kind: String,
    /// Purpose key.
    pub purpose: Option<String>,
    /// `Channel` name.
    pub channel: Option<String>,
    /// `Source` name.
    pub source: String,
    /// Policy version shown.
    pub policy_version: Option<String>,
    /// SHA-256 of the text shown.
    pub text_hash: Option<String>,
    /// Who recorded it.
    pub actor: Option<String>,
    /// When it happened.
    pub occurred_at: ChronoDateTimeUtc,
    /// When it was recorded.
    pub recorded_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
