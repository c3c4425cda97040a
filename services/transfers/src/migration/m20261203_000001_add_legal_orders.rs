//! Disclosures required by law keep the order behind them: the law, the order's
//! reference, who issued it, and until when the subject may not be told.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TransferLog {
    Table,
    LegalBasis,
    OrderReference,
    OrderIssuedBy,
    SecretUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds columns one at a time.
        for column in [
            string_null(TransferLog::LegalBasis),
            string_null(TransferLog::OrderReference),
            string_null(TransferLog::OrderIssuedBy),
            timestamp_with_time_zone_null(TransferLog::SecretUntil),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(TransferLog::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            TransferLog::LegalBasis,
            TransferLog::OrderReference,
            TransferLog::OrderIssuedBy,
            TransferLog::SecretUntil,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(TransferLog::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
