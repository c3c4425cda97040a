//! The `erasure_queue` table: erased subjects whose rows are still being deleted in the
//! background (their key is already gone, so the rows are unreadable).

use sea_orm::entity::prelude::*;

/// A pending deletion.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasure_queue")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// When queued.
    pub queued_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
