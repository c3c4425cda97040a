//! The `assessments` table: each impact assessment as it now stands.

use sea_orm::entity::prelude::*;

/// An assessment, current version.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assessments")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub assessment_id: String,
    /// Current version.
    pub version: i32,
    /// The details (JSON of `domain::assessment::AssessmentDetails`).
    pub details: String,
    /// When it is next reviewed (a copy of the details', for the overdue queries).
    pub next_review_at: ChronoDateTimeUtc,
    /// First recorded.
    pub recorded_at: ChronoDateTimeUtc,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
    /// Who made the last change.
    pub updated_by: String,
}

impl ActiveModelBehavior for ActiveModel {}
