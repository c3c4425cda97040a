//! The `web_operator_sessions` table.

use sea_orm::entity::prelude::*;

/// One operator's session.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_operator_sessions")]
pub struct Model {
    /// SHA-256 (hex) of the cookie's token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Whose.
    pub operator: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Sign-in time (Unix seconds).
    pub created_at: i64,
    /// Last use (Unix seconds): the idle expiry counts from it.
    pub last_seen_at: i64,
    /// Absolute expiry (Unix seconds).
    pub expires_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
