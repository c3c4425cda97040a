//! The `aggregates` table: daily counts, not personal data once k people are behind them.

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
    /// Events counted.
    pub count: i64,
    /// Distinct people counted, up to k (see `domain::aggregate`).
    pub people: i64,
}

impl ActiveModelBehavior for ActiveModel {}
