//! The `support_tickets` table.

use sea_orm::entity::prelude::*;

/// A support ticket, sealed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_tickets")]
pub struct Model {
    /// Ticket id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_id: String,
    /// Subject id.
    pub subject_id: String,
    /// Sealed contact (email or phone).
    pub contact: Vec<u8>,
    /// Sealed summary.
    pub summary: Vec<u8>,
    /// Sealed description.
    pub description: Vec<u8>,
    /// Sealed special categories declared (comma-separated names); null: none.
    pub special_categories: Option<Vec<u8>>,
    /// Opened.
    pub created_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
