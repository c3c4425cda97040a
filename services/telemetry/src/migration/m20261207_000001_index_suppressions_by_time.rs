//! Issue 19: suppressions indexed by when the subject was erased, so a replica reads only
//! the ones added since it last looked instead of the whole list every few seconds (the
//! list grows with every erased subject and is never purged).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    ErasedAt,
}

const INDEX: &str = "suppressions_erased_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name(INDEX)
                    .table(Suppressions::Table)
                    .col(Suppressions::ErasedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Suppressions::Table)
                    .to_owned(),
            )
            .await
    }
}
