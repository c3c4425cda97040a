//! The `deletion_reasons` table.

use sea_orm::entity::prelude::*;

/// Why an account was deleted, by the erasure's request id: the subject's own reason, or
/// `erasure_request` when only rights' fan-out asked.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deletion_reasons")]
pub struct Model {
    /// The erasure request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// `DeletionReason` name, or `erasure_request`.
    pub reason: String,
}

impl ActiveModelBehavior for ActiveModel {}
