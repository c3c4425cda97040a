//! The `subject_triggers` table: events retention periods count from, per subject.

use sea_orm::entity::prelude::*;

/// A trigger that happened for a subject; the first time recorded stands.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subject_triggers")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// `RetentionTrigger` name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub trigger: String,
    /// When it happened.
    pub occurred_at: ChronoDateTimeUtc,
    /// When it was recorded.
    pub recorded_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
