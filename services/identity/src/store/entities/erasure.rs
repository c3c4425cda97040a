//! The `erasures` table.

use sea_orm::entity::prelude::*;

/// A completed erasure: its receipt (no personal data), keyed by request id.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasures")]
pub struct Model {
    /// The erasure request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Blind index of the subject id (not the id itself).
    pub subject_ref: Vec<u8>,
    /// JSON receipt without the subject id.
    pub receipt: String,
    /// Deletion reason code, or `erasure_request`.
    pub reason: String,
    /// Completed.
    pub completed_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
