//! The organisation key of an account's email domain (policy: "We may use your email
//! domain to understand which organization or industry you're associated with"): sealed
//! with the subject's data key like the email it comes from, so it can be answered and is
//! shredded with the account; null for a free-mail address and for accounts from before
//! this column (they gain it at their next email change).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Organisation,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(blob_null(Accounts::Organisation))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::Organisation)
                    .to_owned(),
            )
            .await
    }
}
