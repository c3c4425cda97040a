//! Special categories of personal data (Art. 9 GDPR) declared on support tickets and
//! attachments: a sealed, comma-separated list of `SpecialCategory` names per row; null for
//! rows from before the declaration existed (none declared).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SupportTickets {
    Table,
    SpecialCategories,
}

#[derive(DeriveIden)]
enum TicketAttachments {
    Table,
    SpecialCategories,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(SupportTickets::Table)
                    .add_column(blob_null(SupportTickets::SpecialCategories))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TicketAttachments::Table)
                    .add_column(blob_null(TicketAttachments::SpecialCategories))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TicketAttachments::Table)
                    .drop_column(TicketAttachments::SpecialCategories)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SupportTickets::Table)
                    .drop_column(SupportTickets::SpecialCategories)
                    .to_owned(),
            )
            .await
    }
}
