//! `web_operators` and `web_operator_sessions`: the privacy team's console accounts and
//! their sessions (apart from the people's).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates both tables.
#[derive(Debug)]
pub struct CreateWebOperators;

impl MigrationName for CreateWebOperators {
    fn name(&self) -> &str {
        "m20261206_000004_create_web_operators"
    }
}

#[derive(DeriveIden)]
enum WebOperators {
    Table,
    Name,
    PasswordHash,
    WrappedKey,
    TotpSealed,
    LastTotpStep,
    CreatedAt,
    Disabled,
}

#[derive(DeriveIden)]
enum WebOperatorSessions {
    Table,
    Key,
    Operator,
    Csrf,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebOperators {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebOperators::Table)
                    .if_not_exists()
                    .col(string(WebOperators::Name).primary_key())
                    .col(string(WebOperators::PasswordHash))
                    .col(blob(WebOperators::WrappedKey))
                    .col(blob(WebOperators::TotpSealed))
                    .col(big_integer_null(WebOperators::LastTotpStep))
                    .col(big_integer(WebOperators::CreatedAt))
                    .col(boolean(WebOperators::Disabled).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebOperatorSessions::Table)
                    .if_not_exists()
                    .col(string(WebOperatorSessions::Key).primary_key())
                    .col(string(WebOperatorSessions::Operator))
                    .col(string(WebOperatorSessions::Csrf))
                    .col(big_integer(WebOperatorSessions::CreatedAt))
                    .col(big_integer(WebOperatorSessions::LastSeenAt))
                    .col(big_integer(WebOperatorSessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_web_operator_sessions_operator")
                    .table(WebOperatorSessions::Table)
                    .col(WebOperatorSessions::Operator)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebOperatorSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebOperators::Table).to_owned())
            .await
    }
}
