//! Who is affected (`affected_subjects`): one row per subject an incident's search found,
//! the services that held the subject's data, and when first found. Ids only.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AffectedSubjects {
    Table,
    IncidentId,
    SubjectId,
    Services,
    FoundAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The key makes a subject once per incident: a second search adds no row twice.
        manager
            .create_table(
                Table::create()
                    .table(AffectedSubjects::Table)
                    .if_not_exists()
                    .col(string(AffectedSubjects::IncidentId))
                    .col(string(AffectedSubjects::SubjectId))
                    .col(text(AffectedSubjects::Services))
                    .col(timestamp_with_time_zone(AffectedSubjects::FoundAt))
                    .primary_key(
                        Index::create()
                            .col(AffectedSubjects::IncidentId)
                            .col(AffectedSubjects::SubjectId),
                    )
                    .to_owned(),
            )
            .await
    }
}
