//! The `sessions` table.

use sea_orm::entity::prelude::*;

/// A session; only the SHA-256 of its token is stored.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// SHA-256 of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: Vec<u8>,
    /// Subject id.
    pub subject_id: String,
    /// Created.
    pub created_at: ChronoDateTimeUtc,
    /// Expires.
    pub expires_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
