//! The `subject_keys` table. Each service that encrypts personal data lists this
//! migration in its own migrator, so the table lives in that service's database.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `subject_keys`.
#[derive(Debug)]
pub struct CreateSubjectKeys;

impl MigrationName for CreateSubjectKeys {
    fn name(&self) -> &str {
        "m20261129_000000_create_subject_keys"
    }
}

#[derive(DeriveIden)]
enum SubjectKeys {
    Table,
    SubjectId,
    WrappedKey,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSubjectKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubjectKeys::Table)
                    .if_not_exists()
                    .col(string(SubjectKeys::SubjectId).primary_key())
                    .col(blob(SubjectKeys::WrappedKey))
                    .col(timestamp_with_time_zone(SubjectKeys::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubjectKeys::Table).to_owned())
            .await
    }
}
