//! Recipients, mechanisms, the transfer log and erasure receipts. Lists are JSON text.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Recipients {
    Table,
    RecipientId,
    Key,
    Name,
    Role,
    Country,
    Purposes,
    DataCategories,
    ContractReference,
    ContractDate,
    Certifications,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Mechanisms {
    Table,
    MechanismId,
    RecipientId,
    Kind,
    Regimes,
    SccModule,
    ExporterRole,
    SignedOn,
    Parties,
    AnnexReferences,
    ValidFrom,
    ExpiresAt,
    ReviewDue,
    Status,
    Purposes,
    DataCategories,
    TiaReference,
    TiaAssessedOn,
    TiaOutcome,
    TiaMeasures,
    Occasional,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TransferLog {
    Table,
    LogId,
    RecipientId,
    RecipientName,
    Country,
    Regime,
    Purpose,
    DataCategories,
    SubjectId,
    Allowed,
    Outcome,
    MechanismId,
    MechanismKind,
    Detail,
    Reference,
    DecidedAt,
}

#[derive(DeriveIden)]
enum Erasures {
    Table,
    RequestId,
    SubjectRef,
    Receipt,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Recipients::Table)
                    .if_not_exists()
                    .col(string(Recipients::RecipientId).primary_key())
                    .col(string(Recipients::Key).unique_key())
                    .col(string(Recipients::Name))
                    .col(string(Recipients::Role))
                    .col(string(Recipients::Country))
                    .col(text(Recipients::Purposes))
                    .col(text(Recipients::DataCategories))
                    .col(string(Recipients::ContractReference))
                    .col(string(Recipients::ContractDate))
                    .col(text(Recipients::Certifications))
                    .col(timestamp_with_time_zone(Recipients::CreatedAt))
                    .col(timestamp_with_time_zone(Recipients::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Mechanisms::Table)
                    .if_not_exists()
                    .col(string(Mechanisms::MechanismId).primary_key())
                    .col(string(Mechanisms::RecipientId))
                    .col(string(Mechanisms::Kind))
                    .col(text(Mechanisms::Regimes))
                    .col(integer_null(Mechanisms::SccModule))
                    .col(string(Mechanisms::ExporterRole))
                    .col(string(Mechanisms::SignedOn))
                    .col(text(Mechanisms::Parties))
                    .col(text(Mechanisms::AnnexReferences))
                    .col(timestamp_with_time_zone(Mechanisms::ValidFrom))
                    .col(timestamp_with_time_zone_null(Mechanisms::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Mechanisms::ReviewDue))
                    .col(string(Mechanisms::Status))
                    .col(text(Mechanisms::Purposes))
                    .col(text(Mechanisms::DataCategories))
                    .col(string_null(Mechanisms::TiaReference))
                    .col(string_null(Mechanisms::TiaAssessedOn))
                    .col(string_null(Mechanisms::TiaOutcome))
                    .col(text(Mechanisms::TiaMeasures))
                    .col(boolean(Mechanisms::Occasional))
                    .col(timestamp_with_time_zone(Mechanisms::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mechanisms_recipient")
                    .table(Mechanisms::Table)
                    .col(Mechanisms::RecipientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TransferLog::Table)
                    .if_not_exists()
                    .col(string(TransferLog::LogId).primary_key())
                    .col(string(TransferLog::RecipientId))
                    .col(string(TransferLog::RecipientName))
                    .col(string(TransferLog::Country))
                    .col(string(TransferLog::Regime))
                    .col(string(TransferLog::Purpose))
                    .col(text(TransferLog::DataCategories))
                    .col(string_null(TransferLog::SubjectId))
                    .col(boolean(TransferLog::Allowed))
                    .col(string(TransferLog::Outcome))
                    .col(string_null(TransferLog::MechanismId))
                    .col(string_null(TransferLog::MechanismKind))
                    .col(text(TransferLog::Detail))
                    .col(string(TransferLog::Reference))
                    .col(timestamp_with_time_zone(TransferLog::DecidedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("transfer_log_subject", TransferLog::SubjectId),
            ("transfer_log_recipient", TransferLog::RecipientId),
            ("transfer_log_decided_at", TransferLog::DecidedAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(TransferLog::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Erasures::Table)
                    .if_not_exists()
                    .col(string(Erasures::RequestId).primary_key())
                    .col(string(Erasures::SubjectRef))
                    .col(text(Erasures::Receipt))
                    .col(timestamp_with_time_zone(Erasures::CompletedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Erasures::Table.into_iden(),
            TransferLog::Table.into_iden(),
            Mechanisms::Table.into_iden(),
            Recipients::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
