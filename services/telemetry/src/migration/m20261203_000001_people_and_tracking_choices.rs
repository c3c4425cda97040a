//! Issue 15: aggregates count distinct people (a `people` column and the per-bucket sets
//! of keyed hashes kept until k is reached), and logged-out visitors' tracking choices.
//!
//! Buckets counted before this migration have `people` 0: how many people are behind
//! them cannot be known (their events' dimensions are sealed), so they are withheld like
//! any small bucket and deleted by the small-bucket purge.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Aggregates {
    Table,
    People,
}

#[derive(DeriveIden)]
enum AggregatePeople {
    Table,
    Day,
    Dimension,
    Value,
    Person,
}

#[derive(DeriveIden)]
enum TrackingChoices {
    Table,
    ChoiceId,
    DeviceHash,
    Analytics,
    Advertising,
    Gpc,
    PolicyVersion,
    TextHash,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Aggregates::Table)
                    .add_column(big_integer(Aggregates::People).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AggregatePeople::Table)
                    .if_not_exists()
                    .col(string(AggregatePeople::Day))
                    .col(string(AggregatePeople::Dimension))
                    .col(string(AggregatePeople::Value))
                    .col(blob(AggregatePeople::Person))
                    .primary_key(
                        Index::create()
                            .col(AggregatePeople::Day)
                            .col(AggregatePeople::Dimension)
                            .col(AggregatePeople::Value)
                            .col(AggregatePeople::Person),
                    )
                    .to_owned(),
            )
            .await?;
        // Erasure deletes a subject's hashes from every set.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("aggregate_people_person")
                    .table(AggregatePeople::Table)
                    .col(AggregatePeople::Person)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TrackingChoices::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TrackingChoices::ChoiceId))
                    .col(blob(TrackingChoices::DeviceHash))
                    .col(boolean(TrackingChoices::Analytics))
                    .col(boolean(TrackingChoices::Advertising))
                    .col(boolean(TrackingChoices::Gpc))
                    .col(string(TrackingChoices::PolicyVersion))
                    .col(string(TrackingChoices::TextHash))
                    .col(timestamp_with_time_zone(TrackingChoices::RecordedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("tracking_choices_device")
                    .table(TrackingChoices::Table)
                    .col(TrackingChoices::DeviceHash)
                    .col(TrackingChoices::ChoiceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("tracking_choices_recorded")
                    .table(TrackingChoices::Table)
                    .col(TrackingChoices::RecordedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TrackingChoices::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AggregatePeople::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Aggregates::Table)
                    .drop_column(Aggregates::People)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
