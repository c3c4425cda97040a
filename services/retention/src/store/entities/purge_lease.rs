//! The `purge_lease` table: one row; whoever holds it runs purges.

use sea_orm::entity::prelude::*;

/// The lease.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purge_lease")]
pub struct Model {
    /// Lease name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Holder (a replica and run), or none.
    pub holder: Option<String>,
    /// The run holding it.
    pub run_id: Option<String>,
    /// When taken.
    pub acquired_at: Option<ChronoDateTimeUtc>,
    /// When another replica may take it over.
    pub expires_at: Option<ChronoDateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
