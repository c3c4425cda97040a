//! The `erasures` table. Consent, telemetry and transfers created it in their first
//! migration with this very shape (kept, as released migrations are); identity moved its
//! own shape to this one. A service that erases lists [`CreateErasureReceipts`].

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the erasure receipts' table where it does not exist yet.
#[derive(Debug)]
pub struct CreateErasureReceipts;

impl MigrationName for CreateErasureReceipts {
    fn name(&self) -> &str {
        "m20261205_000000_create_erasure_receipts"
    }
}

/// The receipts.
#[derive(DeriveIden)]
pub enum Erasures {
    /// Table.
    Table,
    /// Request id.
    RequestId,
    /// The subject's reference.
    SubjectRef,
    /// Encoded receipt.
    Receipt,
    /// Completion time.
    CompletedAt,
}

/// Creates the table unless it exists: shared with migrations that rebuild it.
pub async fn create_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Erasures::Table)
                .if_not_exists()
                .col(string(Erasures::RequestId).primary_key())
                .col(string(Erasures::SubjectRef))
                .col(text(Erasures::Receipt))
                .col(timestamp_with_time_zone(Erasures::CompletedAt))
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for CreateErasureReceipts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Erasures::Table).if_exists().to_owned())
            .await
    }
}
