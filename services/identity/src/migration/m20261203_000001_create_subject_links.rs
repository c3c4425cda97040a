//! Which company clients serve which subjects: a client sees only the subjects it is
//! linked with (created the account, a sign-in through it, or LinkSubject with a session).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SubjectLinks {
    Table,
    SubjectId,
    Client,
    How,
    LinkedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubjectLinks::Table)
                    .if_not_exists()
                    .col(string(SubjectLinks::SubjectId))
                    .col(string(SubjectLinks::Client))
                    .col(string(SubjectLinks::How))
                    .col(timestamp_with_time_zone(SubjectLinks::LinkedAt))
                    .primary_key(
                        Index::create()
                            .col(SubjectLinks::SubjectId)
                            .col(SubjectLinks::Client),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubjectLinks::Table).to_owned())
            .await
    }
}
