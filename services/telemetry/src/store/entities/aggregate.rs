//! The `aggregates` table: daily counts, not personal data.

use sea_orm::entity::prelude::*;

/// A daily count.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "aggregates")]
pub struct Model {
    /// Day, YYYY-MM-DD.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Dimension name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub dimension: String,
    /// Value.
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    /// Count.
    pub count: i64,
}

impl ActiveModelBehavior for ActiveModel {}
