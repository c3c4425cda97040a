//! The `ticket_attachments` table.

use sea_orm::entity::prelude::*;

/// A support ticket attachment, sealed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_attachments")]
pub struct Model {
    /// Attachment id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub attachment_id: String,
    /// Ticket id.
    pub ticket_id: String,
    /// Subject id.
    pub subject_id: String,
    /// Sealed file name.
    pub file_name: Vec<u8>,
    /// Detected MIME type.
    pub content_type: String,
    /// Size of the plaintext in bytes.
    pub size_bytes: i64,
    /// Sealed content.
    pub content: Vec<u8>,
    /// Sealed special categories declared (comma-separated names); null: none.
    pub special_categories: Option<Vec<u8>>,
}

impl ActiveModelBehavior for ActiveModel {}
