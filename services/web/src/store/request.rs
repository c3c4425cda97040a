//! The `web_requests` table.

use sea_orm::entity::prelude::*;

/// A data-subject request made on these pages.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_requests")]
pub struct Model {
    /// The rights service's request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Whose request: only their sessions list it.
    pub subject_id: String,
    /// When it was made here (Unix seconds).
    pub created_at: i64,
    /// The one-time token the rights service gives with a completed access request (once:
    /// kept so the person can download their package later).
    pub download_token: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
