//! Requests, their tasks (stored before any service is called), export package chunks
//! (sealed) and the outbox.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    RequestId,
    ClientReference,
    Kind,
    Regime,
    SubjectId,
    Status,
    Priority,
    ReceivedAt,
    VerifiedAt,
    DueAt,
    OriginalDueAt,
    ExtensionReason,
    ConfirmBy,
    ClosedAt,
    OutcomeReason,
    WrappedKey,
    Details,
    TraceParent,
    PackageExpiresAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    RequestId,
    Service,
    Action,
    Status,
    Priority,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    Result,
    DoneAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PackageChunks {
    Table,
    RequestId,
    Service,
    Seq,
    Chunk,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    MessageId,
    RequestId,
    Topic,
    Recipient,
    Body,
    Status,
    Attempts,
    CreatedAt,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Requests::Table)
                    .if_not_exists()
                    .col(string(Requests::RequestId).primary_key())
                    .col(string_null(Requests::ClientReference).unique_key())
                    .col(string(Requests::Kind))
                    .col(string(Requests::Regime))
                    .col(string_null(Requests::SubjectId))
                    .col(string(Requests::Status))
                    .col(integer(Requests::Priority))
                    .col(timestamp_with_time_zone(Requests::ReceivedAt))
                    .col(timestamp_with_time_zone_null(Requests::VerifiedAt))
                    .col(timestamp_with_time_zone(Requests::DueAt))
                    .col(timestamp_with_time_zone(Requests::OriginalDueAt))
                    .col(text_null(Requests::ExtensionReason))
                    .col(timestamp_with_time_zone_null(Requests::ConfirmBy))
                    .col(timestamp_with_time_zone_null(Requests::ClosedAt))
                    .col(text_null(Requests::OutcomeReason))
                    .col(blob(Requests::WrappedKey))
                    .col(blob(Requests::Details))
                    .col(string_null(Requests::TraceParent))
                    .col(timestamp_with_time_zone_null(Requests::PackageExpiresAt))
                    .col(timestamp_with_time_zone(Requests::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("requests_status_due", Requests::Status),
            ("requests_subject", Requests::SubjectId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Requests::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
                    .col(string(Tasks::RequestId))
                    .col(string(Tasks::Service))
                    .col(string(Tasks::Action))
                    .col(string(Tasks::Status))
                    .col(integer(Tasks::Priority))
                    .col(integer(Tasks::Attempts))
                    .col(timestamp_with_time_zone(Tasks::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Tasks::LeaseUntil))
                    .col(text_null(Tasks::LastError))
                    .col(text_null(Tasks::Result))
                    .col(timestamp_with_time_zone_null(Tasks::DoneAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Tasks::RequestId)
                            .col(Tasks::Service)
                            .col(Tasks::Action),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tasks_due")
                    .table(Tasks::Table)
                    .col(Tasks::Status)
                    .col(Tasks::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PackageChunks::Table)
                    .if_not_exists()
                    .col(string(PackageChunks::RequestId))
                    .col(string(PackageChunks::Service))
                    .col(integer(PackageChunks::Seq))
                    .col(blob(PackageChunks::Chunk))
                    .primary_key(
                        Index::create()
                            .col(PackageChunks::RequestId)
                            .col(PackageChunks::Service)
                            .col(PackageChunks::Seq),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(string(Outbox::MessageId).primary_key())
                    .col(string(Outbox::RequestId))
                    .col(string(Outbox::Topic))
                    .col(blob_null(Outbox::Recipient))
                    .col(blob(Outbox::Body))
                    .col(string(Outbox::Status))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            PackageChunks::Table.into_iden(),
            Tasks::Table.into_iden(),
            Requests::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
