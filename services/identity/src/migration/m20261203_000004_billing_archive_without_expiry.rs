//! The billing archive keeps no expiry of its own: `retain_until` was computed at erasure
//! from an identity setting and drifted from the retention service's policy
//! `billing.record` once the privacy team changed it with UpsertPolicy. The purge already
//! counts from `closed_at` with the cutoff retention sends, so the column goes and the
//! index moves to `closed_at`, the column purges filter on.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BillingArchive {
    Table,
    ClosedAt,
    RetainUntil,
}

const OLD_INDEX: &str = "billing_archive_retain_until";
const NEW_INDEX: &str = "billing_archive_closed_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite refuses to drop an indexed column: the index goes first.
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(BillingArchive::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(BillingArchive::Table)
                    .drop_column(BillingArchive::RetainUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_INDEX)
                    .table(BillingArchive::Table)
                    .col(BillingArchive::ClosedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NEW_INDEX)
                    .table(BillingArchive::Table)
                    .to_owned(),
            )
            .await?;
        // Entries archived meanwhile have no expiry to restore; null says so.
        manager
            .alter_table(
                Table::alter()
                    .table(BillingArchive::Table)
                    .add_column(timestamp_with_time_zone_null(BillingArchive::RetainUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(BillingArchive::Table)
                    .col(BillingArchive::RetainUntil)
                    .to_owned(),
            )
            .await
    }
}
