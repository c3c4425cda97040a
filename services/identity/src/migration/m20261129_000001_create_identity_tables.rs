//! Accounts, photos, sessions, billing, tickets, throttling and erasure receipts.
//! Columns holding personal data are `blob`s sealed with the subject's data key.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SubjectId,
    EmailIndex,
    Email,
    FirstName,
    LastName,
    Phone,
    BirthDate,
    Region,
    PasswordHash,
    Restricted,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProfilePhotos {
    Table,
    SubjectId,
    ContentType,
    SizeBytes,
    Photo,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    TokenHash,
    SubjectId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum BillingContacts {
    Table,
    SubjectId,
    Name,
    Email,
    Phone,
    ProcessorRef,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingArchive {
    Table,
    ArchiveId,
    SubjectRef,
    WrappedKey,
    Record,
    ClosedAt,
    RetainUntil,
}

#[derive(DeriveIden)]
enum SupportTickets {
    Table,
    TicketId,
    SubjectId,
    Contact,
    Summary,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TicketAttachments {
    Table,
    AttachmentId,
    TicketId,
    SubjectId,
    FileName,
    ContentType,
    SizeBytes,
    Content,
}

#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    EmailIndex,
    Failures,
    LockedUntil,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Erasures {
    Table,
    RequestId,
    SubjectRef,
    Receipt,
    Reason,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(string(Accounts::SubjectId).primary_key())
                    .col(blob(Accounts::EmailIndex).unique_key())
                    .col(blob(Accounts::Email))
                    .col(blob(Accounts::FirstName))
                    .col(blob(Accounts::LastName))
                    .col(blob_null(Accounts::Phone))
                    .col(blob_null(Accounts::BirthDate))
                    .col(string(Accounts::Region))
                    .col(string(Accounts::PasswordHash))
                    .col(boolean(Accounts::Restricted).default(false))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProfilePhotos::Table)
                    .if_not_exists()
                    .col(string(ProfilePhotos::SubjectId).primary_key())
                    .col(string(ProfilePhotos::ContentType))
                    .col(big_integer(ProfilePhotos::SizeBytes))
                    .col(blob(ProfilePhotos::Photo))
                    .col(timestamp_with_time_zone(ProfilePhotos::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(blob(Sessions::TokenHash).primary_key())
                    .col(string(Sessions::SubjectId))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_subject")
                    .table(Sessions::Table)
                    .col(Sessions::SubjectId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingContacts::Table)
                    .if_not_exists()
                    .col(string(BillingContacts::SubjectId).primary_key())
                    .col(blob(BillingContacts::Name))
                    .col(blob(BillingContacts::Email))
                    .col(blob_null(BillingContacts::Phone))
                    .col(blob(BillingContacts::ProcessorRef))
                    .col(timestamp_with_time_zone(BillingContacts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingArchive::Table)
                    .if_not_exists()
                    .col(string(BillingArchive::ArchiveId).primary_key())
                    .col(blob(BillingArchive::SubjectRef))
                    .col(blob(BillingArchive::WrappedKey))
                    .col(blob(BillingArchive::Record))
                    .col(timestamp_with_time_zone(BillingArchive::ClosedAt))
                    .col(timestamp_with_time_zone(BillingArchive::RetainUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("billing_archive_retain_until")
                    .table(BillingArchive::Table)
                    .col(BillingArchive::RetainUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportTickets::Table)
                    .if_not_exists()
                    .col(string(SupportTickets::TicketId).primary_key())
                    .col(string(SupportTickets::SubjectId))
                    .col(blob(SupportTickets::Contact))
                    .col(blob(SupportTickets::Summary))
                    .col(blob(SupportTickets::Description))
                    .col(timestamp_with_time_zone(SupportTickets::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("support_tickets_subject")
                    .table(SupportTickets::Table)
                    .col(SupportTickets::SubjectId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TicketAttachments::Table)
                    .if_not_exists()
                    .col(string(TicketAttachments::AttachmentId).primary_key())
                    .col(string(TicketAttachments::TicketId))
                    .col(string(TicketAttachments::SubjectId))
                    .col(blob(TicketAttachments::FileName))
                    .col(string(TicketAttachments::ContentType))
                    .col(big_integer(TicketAttachments::SizeBytes))
                    .col(blob(TicketAttachments::Content))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ticket_attachments_subject")
                    .table(TicketAttachments::Table)
                    .col(TicketAttachments::SubjectId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginThrottle::Table)
                    .if_not_exists()
                    .col(blob(LoginThrottle::EmailIndex).primary_key())
                    .col(integer(LoginThrottle::Failures))
                    .col(timestamp_with_time_zone_null(LoginThrottle::LockedUntil))
                    .col(timestamp_with_time_zone(LoginThrottle::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Erasures::Table)
                    .if_not_exists()
                    .col(string(Erasures::RequestId).primary_key())
                    .col(blob(Erasures::SubjectRef))
                    .col(text(Erasures::Receipt))
                    .col(string(Erasures::Reason))
                    .col(timestamp_with_time_zone(Erasures::CompletedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Erasures::Table.into_iden(),
            LoginThrottle::Table.into_iden(),
            TicketAttachments::Table.into_iden(),
            SupportTickets::Table.into_iden(),
            BillingArchive::Table.into_iden(),
            BillingContacts::Table.into_iden(),
            Sessions::Table.into_iden(),
            ProfilePhotos::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
