//! People told (issue 21, Art. 34): each affected subject's breach notice as the rights
//! service stored it (`affected_subjects.notice_id`, `notice_status`, `notified_at`), and
//! the texts an incident's notices say, fixed by the first NotifyPeople (`people_notices`)
//! so a resumed run tells everyone the same.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AffectedSubjects {
    Table,
    IncidentId,
    NoticeId,
    NoticeStatus,
    NotifiedAt,
}

#[derive(DeriveIden)]
enum PeopleNotices {
    Table,
    IncidentId,
    WhatHappened,
    LikelyConsequences,
    MeasuresTaken,
    StartedBy,
    StartedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds only one at a time.
        for column in [
            string_null(AffectedSubjects::NoticeId),
            string_null(AffectedSubjects::NoticeStatus),
            timestamp_with_time_zone_null(AffectedSubjects::NotifiedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AffectedSubjects::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // The subjects of an incident still to tell, in id order.
        manager
            .create_index(
                Index::create()
                    .name("affected_subjects_to_notify")
                    .table(AffectedSubjects::Table)
                    .col(AffectedSubjects::IncidentId)
                    .col(AffectedSubjects::NotifiedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PeopleNotices::Table)
                    .if_not_exists()
                    .col(string(PeopleNotices::IncidentId).primary_key())
                    .col(text(PeopleNotices::WhatHappened))
                    .col(text(PeopleNotices::LikelyConsequences))
                    .col(text(PeopleNotices::MeasuresTaken))
                    .col(string(PeopleNotices::StartedBy))
                    .col(timestamp_with_time_zone(PeopleNotices::StartedAt))
                    .to_owned(),
            )
            .await
    }
}
