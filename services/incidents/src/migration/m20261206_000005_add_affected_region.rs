//! Who is affected, by region (issue 21): each affected subject's region of residence as
//! identity answered (`affected_subjects.region`, the `pdm.common.v1.Region` name;
//! `REGION_UNSPECIFIED` when identity does not know them; NULL until asked), so the
//! register knows which regime's rules apply to whom without copying their data.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AffectedSubjects {
    Table,
    Region,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AffectedSubjects::Table)
                    .add_column(string_null(AffectedSubjects::Region))
                    .to_owned(),
            )
            .await
    }
}
