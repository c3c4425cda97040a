//! The `legal_holds` table.

use sea_orm::entity::prelude::*;

/// A legal hold; empty subject or category means every one.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "legal_holds")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub hold_id: String,
    /// Subject held, or empty.
    pub subject_id: String,
    /// Category held, or empty.
    pub category: String,
    /// Why.
    pub reason: String,
    /// Reference of the proceedings.
    pub reference: String,
    /// Who placed it.
    pub placed_by: String,
    /// When.
    pub placed_at: ChronoDateTimeUtc,
    /// When released.
    pub released_at: Option<ChronoDateTimeUtc>,
    /// Who released it.
    pub released_by: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
