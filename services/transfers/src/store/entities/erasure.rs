//! The `erasures` table: receipts of completed erasures, by request id.

use sea_orm::entity::prelude::*;

/// A completed erasure. Holds the subject's pseudonym, never its id.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasures")]
pub struct Model {
    /// Erasure request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The subject's pseudonym.
    pub subject_ref: String,
    /// Encoded `ErasureReceipt` (protobuf, base64) without the subject id.
    pub receipt: String,
    /// When it completed.
    pub completed_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
