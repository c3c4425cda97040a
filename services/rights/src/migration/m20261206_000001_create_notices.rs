//! Breach notices (`notices`, issue 21): one per (incident, subject), with the texts the
//! subject was told and the outbox message that carries it; an outbox message now belongs
//! to a request or to a notice (`outbox.notice_id`; `request_id` is empty then).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notices {
    Table,
    NoticeId,
    IncidentId,
    SubjectId,
    WhatHappened,
    LikelyConsequences,
    MeasuresTaken,
    Dpo,
    Outcome,
    MessageId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    NoticeId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notices::Table)
                    .if_not_exists()
                    .col(string(Notices::NoticeId).primary_key())
                    .col(string(Notices::IncidentId))
                    .col(string(Notices::SubjectId))
                    .col(text(Notices::WhatHappened))
                    .col(text(Notices::LikelyConsequences))
                    .col(text(Notices::MeasuresTaken))
                    .col(text(Notices::Dpo))
                    .col(string(Notices::Outcome))
                    .col(string_null(Notices::MessageId))
                    .col(timestamp_with_time_zone(Notices::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // One notice per subject per incident, however often or concurrently it is sent.
        manager
            .create_index(
                Index::create()
                    .name("notices_incident_subject")
                    .table(Notices::Table)
                    .col(Notices::IncidentId)
                    .col(Notices::SubjectId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // A subject's notices, for their access package and their erasure.
        manager
            .create_index(
                Index::create()
                    .name("notices_subject")
                    .table(Notices::Table)
                    .col(Notices::SubjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(string_null(Outbox::NoticeId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_notice")
                    .table(Outbox::Table)
                    .col(Outbox::NoticeId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
