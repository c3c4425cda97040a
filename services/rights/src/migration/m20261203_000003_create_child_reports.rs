//! Reports of a child's data ("Our policy towards the Children"), waiting for the privacy
//! team to confirm them; what identifies the account and the reporter is sealed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChildReports {
    Table,
    ReportId,
    Status,
    ReceivedAt,
    ConfirmedAt,
    SubjectId,
    ReportedBy,
    RequestId,
    WrappedKey,
    Details,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChildReports::Table)
                    .if_not_exists()
                    .col(string(ChildReports::ReportId).primary_key())
                    .col(string(ChildReports::Status))
                    .col(timestamp_with_time_zone(ChildReports::ReceivedAt))
                    .col(timestamp_with_time_zone_null(ChildReports::ConfirmedAt))
                    .col(string_null(ChildReports::SubjectId))
                    .col(string_null(ChildReports::ReportedBy))
                    .col(string_null(ChildReports::RequestId))
                    .col(blob(ChildReports::WrappedKey))
                    .col(blob(ChildReports::Details))
                    .col(timestamp_with_time_zone(ChildReports::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("child_reports_status_received")
                    .table(ChildReports::Table)
                    .col(ChildReports::Status)
                    .col(ChildReports::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChildReports::Table).to_owned())
            .await
    }
}
