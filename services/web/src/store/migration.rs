//! The web front's schema: its sessions table and the requests made on its pages.

use sea_orm_migration::{prelude::*, schema::*};

/// Runs the web migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateWebSessions),
            Box::new(CreateWebRequests),
            Box::new(CreateWebPackages),
            Box::new(super::operators_migration::CreateWebOperators),
        ]
    }
}

/// `web_sessions`: one row per signed-in browser.
#[derive(Debug)]
struct CreateWebSessions;

impl MigrationName for CreateWebSessions {
    fn name(&self) -> &str {
        "m20261205_000001_create_web_sessions"
    }
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    Key,
    SubjectId,
    IdentityToken,
    Csrf,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebSessions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebSessions::Table)
                    .if_not_exists()
                    .col(string(WebSessions::Key).primary_key())
                    .col(string(WebSessions::SubjectId))
                    .col(string(WebSessions::IdentityToken))
                    .col(string(WebSessions::Csrf))
                    .col(big_integer(WebSessions::CreatedAt))
                    .col(big_integer(WebSessions::LastSeenAt))
                    .col(big_integer(WebSessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_web_sessions_subject")
                    .table(WebSessions::Table)
                    .col(WebSessions::SubjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebSessions::Table).to_owned())
            .await
    }
}

/// `web_requests`: which rights requests a person made on these pages (the rights
/// service lists requests to the privacy team only; the pages show a person theirs).
#[derive(Debug)]
struct CreateWebRequests;

impl MigrationName for CreateWebRequests {
    fn name(&self) -> &str {
        "m20261205_000002_create_web_requests"
    }
}

#[derive(DeriveIden)]
enum WebRequests {
    Table,
    RequestId,
    SubjectId,
    CreatedAt,
    DownloadToken,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebRequests {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebRequests::Table)
                    .if_not_exists()
                    .col(string(WebRequests::RequestId).primary_key())
                    .col(string(WebRequests::SubjectId))
                    .col(big_integer(WebRequests::CreatedAt))
                    .col(string_null(WebRequests::DownloadToken))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_web_requests_subject")
                    .table(WebRequests::Table)
                    .col(WebRequests::SubjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebRequests::Table).to_owned())
            .await
    }
}

/// `web_packages`: a completed access request's package, sealed, until it expires.
#[derive(Debug)]
struct CreateWebPackages;

impl MigrationName for CreateWebPackages {
    fn name(&self) -> &str {
        "m20261205_000003_create_web_packages"
    }
}

#[derive(DeriveIden)]
enum WebPackages {
    Table,
    RequestId,
    SubjectId,
    WrappedKey,
    Sealed,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebPackages {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebPackages::Table)
                    .if_not_exists()
                    .col(string(WebPackages::RequestId).primary_key())
                    .col(string(WebPackages::SubjectId))
                    .col(blob(WebPackages::WrappedKey))
                    .col(blob(WebPackages::Sealed))
                    .col(big_integer(WebPackages::ExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebPackages::Table).to_owned())
            .await
    }
}
