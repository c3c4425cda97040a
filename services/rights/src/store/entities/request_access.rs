//! The `request_access` table: who submitted a request (the caller that may read it,
//! beside the privacy team and the subject's own session) and the hash of its one-time
//! download token.

use sea_orm::entity::prelude::*;

/// A request's access record.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "request_access")]
pub struct Model {
    /// The request.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The caller that submitted it (`client:billing`, `identity`, `admin`).
    pub submitted_by: Option<String>,
    /// SHA-256 of the download token, once one was given out.
    pub download_token_hash: Option<Vec<u8>>,
    /// When the token was used for a complete download.
    pub download_token_used_at: Option<ChronoDateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
