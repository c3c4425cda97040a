//! The `subjects` table: regions learned from identity.

use sea_orm::entity::prelude::*;

/// A subject's region and when identity was last asked.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subjects")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// `Region` name.
    pub region: String,
    /// When identity was last asked.
    pub checked_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
