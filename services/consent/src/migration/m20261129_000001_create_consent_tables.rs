//! The ledger (append-only; rows are only pseudonymised on erasure and purged by retention)
//! the region cache, and erasure receipts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsentEvents {
    Table,
    Seq,
    SubjectId,
    Kind,
    Purpose,
    Channel,
    Source,
    PolicyVersion,
    TextHash,
    Actor,
    OccurredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    SubjectId,
    Region,
    CheckedAt,
}

#[derive(DeriveIden)]
enum Erasures {
    Table,
    RequestId,
    SubjectRef,
    Receipt,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsentEvents::Table)
                    .if_not_exists()
                    .col(
                        big_integer(ConsentEvents::Seq)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string(ConsentEvents::SubjectId))
                    .col(string(ConsentEvents::Kind))
                    .col(string_null(ConsentEvents::Purpose))
                    .col(string_null(ConsentEvents::Channel))
                    .col(string(ConsentEvents::Source))
                    .col(string_null(ConsentEvents::PolicyVersion))
                    .col(string_null(ConsentEvents::TextHash))
                    .col(string_null(ConsentEvents::Actor))
                    .col(timestamp_with_time_zone(ConsentEvents::OccurredAt))
                    .col(timestamp_with_time_zone(ConsentEvents::RecordedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("consent_events_subject_seq")
                    .table(ConsentEvents::Table)
                    .col(ConsentEvents::SubjectId)
                    .col(ConsentEvents::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Subjects::Table)
                    .if_not_exists()
                    .col(string(Subjects::SubjectId).primary_key())
                    .col(string(Subjects::Region))
                    .col(timestamp_with_time_zone(Subjects::CheckedAt))
                    .to_owned(),
            )
            .await?;
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
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Erasures::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Subjects::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConsentEvents::Table).to_owned())
            .await
    }
}
