//! The register of data protection impact assessments (`assessments`, each as it now
//! stands) and every version of each (`assessment_versions`). Details are JSON text, one
//! copy per version; the review date is a column of its own for the overdue listing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Assessments {
    Table,
    AssessmentId,
    Version,
    Details,
    NextReviewAt,
    RecordedAt,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum AssessmentVersions {
    Table,
    VersionId,
    AssessmentId,
    Version,
    Details,
    ChangedBy,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Assessments::Table)
                    .if_not_exists()
                    .col(string(Assessments::AssessmentId).primary_key())
                    .col(integer(Assessments::Version))
                    .col(text(Assessments::Details))
                    .col(timestamp_with_time_zone(Assessments::NextReviewAt))
                    .col(timestamp_with_time_zone(Assessments::RecordedAt))
                    .col(timestamp_with_time_zone(Assessments::UpdatedAt))
                    .col(string(Assessments::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        // The overdue listing and its gauge read the reviews due before now.
        manager
            .create_index(
                Index::create()
                    .name("assessments_next_review")
                    .table(Assessments::Table)
                    .col(Assessments::NextReviewAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssessmentVersions::Table)
                    .if_not_exists()
                    .col(string(AssessmentVersions::VersionId).primary_key())
                    .col(string(AssessmentVersions::AssessmentId))
                    .col(integer(AssessmentVersions::Version))
                    .col(text(AssessmentVersions::Details))
                    .col(string(AssessmentVersions::ChangedBy))
                    .col(timestamp_with_time_zone(AssessmentVersions::ChangedAt))
                    .to_owned(),
            )
            .await?;
        // One row per version number: two revisions racing on one version cannot both land.
        manager
            .create_index(
                Index::create()
                    .name("assessment_versions_assessment_version")
                    .table(AssessmentVersions::Table)
                    .col(AssessmentVersions::AssessmentId)
                    .col(AssessmentVersions::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
