//! The register (`incidents`, the current state), every version of every incident
//! (`incident_versions`) and what was sent to the authorities (`authority_notifications`).
//! Details are JSON text, one copy per version.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Incidents {
    Table,
    IncidentId,
    Version,
    Status,
    Details,
    AwareAt,
    OpenedAt,
    UpdatedAt,
    ClosedAt,
    ClosureReason,
}

#[derive(DeriveIden)]
enum IncidentVersions {
    Table,
    VersionId,
    IncidentId,
    Version,
    Change,
    ChangedBy,
    ChangedAt,
    Status,
    Details,
    NotificationId,
    ClosureReason,
}

#[derive(DeriveIden)]
enum AuthorityNotifications {
    Table,
    NotificationId,
    IncidentId,
    Regime,
    Phase,
    SentAt,
    Content,
    Reference,
    DelayReason,
    RecordedAt,
    RecordedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Incidents::Table)
                    .if_not_exists()
                    .col(string(Incidents::IncidentId).primary_key())
                    .col(integer(Incidents::Version))
                    .col(string(Incidents::Status))
                    .col(text(Incidents::Details))
                    .col(timestamp_with_time_zone(Incidents::AwareAt))
                    .col(timestamp_with_time_zone(Incidents::OpenedAt))
                    .col(timestamp_with_time_zone(Incidents::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Incidents::ClosedAt))
                    .col(text_null(Incidents::ClosureReason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("incidents_status_opened")
                    .table(Incidents::Table)
                    .col(Incidents::Status)
                    .col(Incidents::OpenedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentVersions::Table)
                    .if_not_exists()
                    .col(string(IncidentVersions::VersionId).primary_key())
                    .col(string(IncidentVersions::IncidentId))
                    .col(integer(IncidentVersions::Version))
                    .col(string(IncidentVersions::Change))
                    .col(string(IncidentVersions::ChangedBy))
                    .col(timestamp_with_time_zone(IncidentVersions::ChangedAt))
                    .col(string(IncidentVersions::Status))
                    .col(text(IncidentVersions::Details))
                    .col(string_null(IncidentVersions::NotificationId))
                    .col(text_null(IncidentVersions::ClosureReason))
                    .to_owned(),
            )
            .await?;
        // One row per version number: two changes racing on the same version cannot both land.
        manager
            .create_index(
                Index::create()
                    .name("incident_versions_incident_version")
                    .table(IncidentVersions::Table)
                    .col(IncidentVersions::IncidentId)
                    .col(IncidentVersions::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthorityNotifications::Table)
                    .if_not_exists()
                    .col(string(AuthorityNotifications::NotificationId).primary_key())
                    .col(string(AuthorityNotifications::IncidentId))
                    .col(string(AuthorityNotifications::Regime))
                    .col(string(AuthorityNotifications::Phase))
                    .col(timestamp_with_time_zone(AuthorityNotifications::SentAt))
                    .col(text(AuthorityNotifications::Content))
                    .col(string(AuthorityNotifications::Reference))
                    .col(text(AuthorityNotifications::DelayReason))
                    .col(timestamp_with_time_zone(AuthorityNotifications::RecordedAt))
                    .col(string(AuthorityNotifications::RecordedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("authority_notifications_incident")
                    .table(AuthorityNotifications::Table)
                    .col(AuthorityNotifications::IncidentId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
