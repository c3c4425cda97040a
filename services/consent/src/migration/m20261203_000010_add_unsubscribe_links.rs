//! Unsubscribe links: one row per link issued, keyed by its random id; `used_at` makes it
//! single-use. Rows go with the subject's erasure and once expired.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UnsubscribeLinks {
    Table,
    LinkId,
    SubjectId,
    Channel,
    IssuedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UnsubscribeLinks::Table)
                    .if_not_exists()
                    .col(string(UnsubscribeLinks::LinkId).primary_key())
                    .col(string(UnsubscribeLinks::SubjectId))
                    .col(string(UnsubscribeLinks::Channel))
                    .col(timestamp_with_time_zone(UnsubscribeLinks::IssuedAt))
                    .col(timestamp_with_time_zone(UnsubscribeLinks::ExpiresAt))
                    .col(timestamp_with_time_zone_null(UnsubscribeLinks::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_unsubscribe_links_subject")
                    .table(UnsubscribeLinks::Table)
                    .col(UnsubscribeLinks::SubjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_unsubscribe_links_expires")
                    .table(UnsubscribeLinks::Table)
                    .col(UnsubscribeLinks::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UnsubscribeLinks::Table).to_owned())
            .await
    }
}
