//! The `restrictions` table: subjects whose processing is restricted.

use sea_orm::entity::prelude::*;

/// A restricted subject.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "restrictions")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Since when.
    pub restricted_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
