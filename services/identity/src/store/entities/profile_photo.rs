//! The `profile_photos` table.

use sea_orm::entity::prelude::*;

/// A profile photo, sealed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "profile_photos")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Detected MIME type.
    pub content_type: String,
    /// Size of the plaintext in bytes.
    pub size_bytes: i64,
    /// Sealed image bytes.
    pub photo: Vec<u8>,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
