//! The `batches` table: the answer to each batch id, for idempotent retries.

use sea_orm::entity::prelude::*;

/// A processed batch.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "batches")]
pub struct Model {
    /// Batch id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub batch_id: String,
    /// Encoded `IngestEventsResponse`, base64.
    pub response: String,
    /// When it arrived.
    pub received_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
