//! The `assessment_versions` table: every version of every assessment, never changed.

use sea_orm::entity::prelude::*;

/// A version.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assessment_versions")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub version_id: String,
    /// The assessment.
    pub assessment_id: String,
    /// Its number (1, 2, ...).
    pub version: i32,
    /// Details after it (JSON).
    pub details: String,
    /// Who made it.
    pub changed_by: String,
    /// When.
    pub changed_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
