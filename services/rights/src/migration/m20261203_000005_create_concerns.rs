//! Complaints and reports of compromised data, until the privacy team answers them; who
//! reported and what they said is sealed under a key of the concern's own.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Concerns {
    Table,
    ConcernId,
    Kind,
    Status,
    ReceivedAt,
    DueAt,
    ClosedAt,
    SubjectId,
    ReportedBy,
    WrappedKey,
    Details,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Concerns::Table)
                    .if_not_exists()
                    .col(string(Concerns::ConcernId).primary_key())
                    .col(string(Concerns::Kind))
                    .col(string(Concerns::Status))
                    .col(timestamp_with_time_zone(Concerns::ReceivedAt))
                    .col(timestamp_with_time_zone(Concerns::DueAt))
                    .col(timestamp_with_time_zone_null(Concerns::ClosedAt))
                    .col(string_null(Concerns::SubjectId))
                    .col(string_null(Concerns::ReportedBy))
                    .col(blob(Concerns::WrappedKey))
                    .col(blob(Concerns::Details))
                    .col(timestamp_with_time_zone(Concerns::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("concerns_status_due")
                    .table(Concerns::Table)
                    .col(Concerns::Status)
                    .col(Concerns::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Concerns::Table).to_owned())
            .await
    }
}
