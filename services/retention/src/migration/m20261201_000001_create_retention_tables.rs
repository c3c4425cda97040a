//! Policy versions, legal holds, subjects' trigger events, purge runs with their
//! per-service results, and the purge lease. Lists are JSON text.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    Category,
    Version,
    Years,
    Months,
    Days,
    Trigger,
    LegalBasis,
    Description,
    ChangedBy,
    EffectiveFrom,
}

#[derive(DeriveIden)]
enum LegalHolds {
    Table,
    HoldId,
    SubjectId,
    Category,
    Reason,
    Reference,
    PlacedBy,
    PlacedAt,
    ReleasedAt,
    ReleasedBy,
}

#[derive(DeriveIden)]
enum SubjectTriggers {
    Table,
    SubjectId,
    Trigger,
    OccurredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum PurgeRuns {
    Table,
    RunId,
    DryRun,
    Status,
    AsOf,
    StartedAt,
    FinishedAt,
    TriggeredBy,
    Rules,
    HoldIds,
}

#[derive(DeriveIden)]
enum PurgeServiceResults {
    Table,
    RunId,
    Service,
    Position,
    Ok,
    Results,
    Error,
    DurationMs,
    Attempts,
}

#[derive(DeriveIden)]
enum PurgeLease {
    Table,
    Name,
    Holder,
    RunId,
    AcquiredAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PolicyVersions::Table)
                    .if_not_exists()
                    .col(string(PolicyVersions::Category))
                    .col(integer(PolicyVersions::Version))
                    .col(integer(PolicyVersions::Years))
                    .col(integer(PolicyVersions::Months))
                    .col(integer(PolicyVersions::Days))
                    .col(string(PolicyVersions::Trigger))
                    .col(string(PolicyVersions::LegalBasis))
                    .col(text(PolicyVersions::Description))
                    .col(string(PolicyVersions::ChangedBy))
                    .col(timestamp_with_time_zone(PolicyVersions::EffectiveFrom))
                    .primary_key(
                        Index::create()
                            .col(PolicyVersions::Category)
                            .col(PolicyVersions::Version),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LegalHolds::Table)
                    .if_not_exists()
                    .col(string(LegalHolds::HoldId).primary_key())
                    .col(string(LegalHolds::SubjectId))
                    .col(string(LegalHolds::Category))
                    .col(text(LegalHolds::Reason))
                    .col(text(LegalHolds::Reference))
                    .col(string(LegalHolds::PlacedBy))
                    .col(timestamp_with_time_zone(LegalHolds::PlacedAt))
                    .col(timestamp_with_time_zone_null(LegalHolds::ReleasedAt))
                    .col(string_null(LegalHolds::ReleasedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("legal_holds_subject")
                    .table(LegalHolds::Table)
                    .col(LegalHolds::SubjectId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubjectTriggers::Table)
                    .if_not_exists()
                    .col(string(SubjectTriggers::SubjectId))
                    .col(string(SubjectTriggers::Trigger))
                    .col(timestamp_with_time_zone(SubjectTriggers::OccurredAt))
                    .col(timestamp_with_time_zone(SubjectTriggers::RecordedAt))
                    .primary_key(
                        Index::create()
                            .col(SubjectTriggers::SubjectId)
                            .col(SubjectTriggers::Trigger),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PurgeRuns::Table)
                    .if_not_exists()
                    .col(string(PurgeRuns::RunId).primary_key())
                    .col(boolean(PurgeRuns::DryRun))
                    .col(string(PurgeRuns::Status))
                    .col(timestamp_with_time_zone(PurgeRuns::AsOf))
                    .col(timestamp_with_time_zone(PurgeRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(PurgeRuns::FinishedAt))
                    .col(string(PurgeRuns::TriggeredBy))
                    .col(text(PurgeRuns::Rules))
                    .col(text(PurgeRuns::HoldIds))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("purge_runs_status")
                    .table(PurgeRuns::Table)
                    .col(PurgeRuns::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PurgeServiceResults::Table)
                    .if_not_exists()
                    .col(string(PurgeServiceResults::RunId))
                    .col(string(PurgeServiceResults::Service))
                    .col(integer(PurgeServiceResults::Position))
                    .col(boolean(PurgeServiceResults::Ok))
                    .col(text(PurgeServiceResults::Results))
                    .col(text(PurgeServiceResults::Error))
                    .col(big_integer(PurgeServiceResults::DurationMs))
                    .col(integer(PurgeServiceResults::Attempts))
                    .primary_key(
                        Index::create()
                            .col(PurgeServiceResults::RunId)
                            .col(PurgeServiceResults::Service),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PurgeLease::Table)
                    .if_not_exists()
                    .col(string(PurgeLease::Name).primary_key())
                    .col(string_null(PurgeLease::Holder))
                    .col(string_null(PurgeLease::RunId))
                    .col(timestamp_with_time_zone_null(PurgeLease::AcquiredAt))
                    .col(timestamp_with_time_zone_null(PurgeLease::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        // The one lease row, free. Taking it is an UPDATE that only matches while it is
        // free or expired, so two replicas can never both hold it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(PurgeLease::Table)
                    .columns([PurgeLease::Name])
                    .values_panic(["purge".into()])
                    .on_conflict(OnConflict::column(PurgeLease::Name).do_nothing().to_owned())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PurgeLease::Table.into_iden(),
            PurgeServiceResults::Table.into_iden(),
            PurgeRuns::Table.into_iden(),
            SubjectTriggers::Table.into_iden(),
            LegalHolds::Table.into_iden(),
            PolicyVersions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
