//! Who may see a request, and its one-time download token (hashed).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RequestAccess {
    Table,
    RequestId,
    SubmittedBy,
    DownloadTokenHash,
    DownloadTokenUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RequestAccess::Table)
                    .if_not_exists()
                    .col(string(RequestAccess::RequestId).primary_key())
                    .col(string_null(RequestAccess::SubmittedBy))
                    .col(blob_null(RequestAccess::DownloadTokenHash))
                    .col(timestamp_with_time_zone_null(
                        RequestAccess::DownloadTokenUsedAt,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RequestAccess::Table).to_owned())
            .await
    }
}
