//! Tables of the key store, and the legacy `subject_keys` table data databases made
//! before it (still created by their migrators, whose history names it, and dropped at
//! start once its keys are adopted: see [`crate::KeyStore::adopt_legacy`]).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `subject_keys` in a data database (legacy: adopted and dropped at start).
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
    KekVersion,
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
            .drop_table(
                Table::drop()
                    .table(SubjectKeys::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

/// The key store's migrations (its own database or file, its own history).
#[derive(Debug)]
pub struct KeyStoreMigrator;

impl MigratorTrait for KeyStoreMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateKeyStore)]
    }
}

/// Creates the key store's `subject_keys`, with the KEK version of each key.
#[derive(Debug)]
struct CreateKeyStore;

impl MigrationName for CreateKeyStore {
    fn name(&self) -> &str {
        "m20261204_000000_create_key_store"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateKeyStore {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubjectKeys::Table)
                    .if_not_exists()
                    .col(string(SubjectKeys::SubjectId).primary_key())
                    .col(integer(SubjectKeys::KekVersion))
                    .col(blob(SubjectKeys::WrappedKey))
                    .col(timestamp_with_time_zone(SubjectKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("subject_keys_by_kek_version")
                    .table(SubjectKeys::Table)
                    .col(SubjectKeys::KekVersion)
                    .if_not_exists()
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
