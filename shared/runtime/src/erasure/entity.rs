//! The `erasures` table: one receipt per completed erasure request.

use sea_orm::entity::prelude::*;

/// A completed erasure. Holds a reference to the subject (a pseudonym or blind index),
/// never its id.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasures")]
pub struct Model {
    /// Erasure request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The service's reference to the subject (see [`super::Receipts`]).
    pub subject_ref: String,
    /// The `pdm.subject.v1.ErasureReceipt` without the subject id, protobuf in base64.
    pub receipt: String,
    /// When it completed.
    pub completed_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
