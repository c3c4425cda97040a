//! The `crashes` table.

use sea_orm::entity::prelude::*;

/// A crash report; message, stack trace and device are sealed when there is a subject.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crashes")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub crash_id: String,
    /// Subject.
    pub subject_id: Option<String>,
    /// Error type.
    pub error_type: String,
    /// JSON payload (scrubbed), sealed when `sealed`.
    pub payload: Vec<u8>,
    /// Whether the payload is sealed with the subject's key.
    pub sealed: bool,
    /// When it happened.
    pub occurred_at: ChronoDateTimeUtc,
    /// When it arrived.
    pub received_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
