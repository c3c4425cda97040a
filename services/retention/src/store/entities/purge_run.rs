//! The `purge_runs` table.

use sea_orm::entity::prelude::*;

/// A purge run.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purge_runs")]
pub struct Model {
    /// Id (UUIDv7: time-ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    /// Count only.
    pub dry_run: bool,
    /// `RunStatus` name.
    pub status: String,
    /// The time cutoffs are computed from.
    pub as_of: ChronoDateTimeUtc,
    /// Started.
    pub started_at: ChronoDateTimeUtc,
    /// End of the last attempt.
    pub finished_at: Option<ChronoDateTimeUtc>,
    /// "schedule", "api" or the operator.
    pub triggered_by: String,
    /// JSON list of the rules of the latest attempt.
    pub rules: String,
    /// JSON list of the holds in force at the latest attempt.
    pub hold_ids: String,
}

impl ActiveModelBehavior for ActiveModel {}
