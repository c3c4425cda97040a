//! Events (on PostgreSQL, range-partitioned by day of occurrence, so purging old data drops
//! partitions instead of deleting rows), crash reports, aggregates, batches, suppression
//! and restriction lists, the erasure queue and receipts.

use sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Crashes {
    Table,
    CrashId,
    SubjectId,
    ErrorType,
    Payload,
    Sealed,
    OccurredAt,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Aggregates {
    Table,
    Day,
    Dimension,
    Value,
    Count,
}

#[derive(DeriveIden)]
enum Batches {
    Table,
    BatchId,
    Response,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    SubjectHash,
    ErasedAt,
}

#[derive(DeriveIden)]
enum Restrictions {
    Table,
    SubjectId,
    RestrictedAt,
}

#[derive(DeriveIden)]
enum ErasureQueue {
    Table,
    SubjectId,
    QueuedAt,
}

#[derive(DeriveIden)]
enum Erasures {
    Table,
    RequestId,
    SubjectRef,
    Receipt,
    CompletedAt,
}

const EVENTS_COLUMNS: &str = "event_id {id}, subject_id TEXT NULL, kind TEXT NOT NULL, \
    occurred_at {ts} NOT NULL, received_at {ts} NOT NULL, batch_id TEXT NOT NULL, \
    peer_hash {bin} NULL, payload {bin} NOT NULL, sealed BOOLEAN NOT NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                let columns = EVENTS_COLUMNS
                    .replace("{id}", "BIGSERIAL")
                    .replace("{ts}", "TIMESTAMPTZ")
                    .replace("{bin}", "BYTEA");
                db.execute_unprepared(&format!(
                    "CREATE TABLE IF NOT EXISTS events ({columns}) PARTITION BY RANGE (occurred_at)"
                ))
                .await?;
            }
            _ => {
                let columns = EVENTS_COLUMNS
                    .replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                    .replace("{ts}", "TEXT")
                    .replace("{bin}", "BLOB");
                db.execute_unprepared(&format!("CREATE TABLE IF NOT EXISTS events ({columns})"))
                    .await?;
            }
        }
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS events_subject ON events (subject_id, event_id)",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS events_peer ON events (peer_hash)")
            .await?;
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS events_occurred ON events (occurred_at)")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Crashes::Table)
                    .if_not_exists()
                    .col(string(Crashes::CrashId).primary_key())
                    .col(string_null(Crashes::SubjectId))
                    .col(string(Crashes::ErrorType))
                    .col(blob(Crashes::Payload))
                    .col(boolean(Crashes::Sealed))
                    .col(timestamp_with_time_zone(Crashes::OccurredAt))
                    .col(timestamp_with_time_zone(Crashes::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Aggregates::Table)
                    .if_not_exists()
                    .col(string(Aggregates::Day))
                    .col(string(Aggregates::Dimension))
                    .col(string(Aggregates::Value))
                    .col(big_integer(Aggregates::Count))
                    .primary_key(
                        Index::create()
                            .col(Aggregates::Day)
                            .col(Aggregates::Dimension)
                            .col(Aggregates::Value),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Batches::Table)
                    .if_not_exists()
                    .col(string(Batches::BatchId).primary_key())
                    .col(text(Batches::Response))
                    .col(timestamp_with_time_zone(Batches::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Suppressions::Table)
                    .if_not_exists()
                    .col(blob(Suppressions::SubjectHash).primary_key())
                    .col(timestamp_with_time_zone(Suppressions::ErasedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Restrictions::Table)
                    .if_not_exists()
                    .col(string(Restrictions::SubjectId).primary_key())
                    .col(timestamp_with_time_zone(Restrictions::RestrictedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ErasureQueue::Table)
                    .if_not_exists()
                    .col(string(ErasureQueue::SubjectId).primary_key())
                    .col(timestamp_with_time_zone(ErasureQueue::QueuedAt))
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
        for table in [
            Erasures::Table.into_iden(),
            ErasureQueue::Table.into_iden(),
            Restrictions::Table.into_iden(),
            Suppressions::Table.into_iden(),
            Batches::Table.into_iden(),
            Aggregates::Table.into_iden(),
            Crashes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS events")
            .await?;
        Ok(())
    }
}
