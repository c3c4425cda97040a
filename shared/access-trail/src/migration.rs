//! The `access_log` and `access_log_head` tables, in each service's own database: the
//! skeleton adds this migration to every service's migrator ([`WithAccessTrail`]).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the access trail's tables.
#[derive(Debug)]
pub struct CreateAccessLog;

impl MigrationName for CreateAccessLog {
    fn name(&self) -> &str {
        "m20261129_000000_create_access_log"
    }
}

/// The trail.
#[derive(DeriveIden)]
pub enum AccessLog {
    /// Table.
    Table,
    /// Position in the chain.
    Seq,
    /// RFC 3339 time, as hashed.
    At,
    /// Caller.
    Caller,
    /// Method path.
    Method,
    /// Subject id.
    SubjectId,
    /// Purpose.
    Purpose,
    /// Trace id.
    TraceId,
    /// Previous entry's hash.
    PrevHash,
    /// This entry's hash.
    Hash,
}

/// The chain's head: one row, the last position and hash.
#[derive(DeriveIden)]
pub enum AccessLogHead {
    /// Table.
    Table,
    /// Always 1.
    Id,
    /// Last position.
    Seq,
    /// Last hash.
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccessLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccessLog::Table)
                    .if_not_exists()
                    .col(big_integer(AccessLog::Seq).primary_key())
                    .col(string(AccessLog::At))
                    .col(string(AccessLog::Caller))
                    .col(string(AccessLog::Method))
                    .col(string(AccessLog::SubjectId))
                    .col(string(AccessLog::Purpose))
                    .col(string(AccessLog::TraceId))
                    .col(blob(AccessLog::PrevHash))
                    .col(blob(AccessLog::Hash))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("access_log_by_subject")
                    .table(AccessLog::Table)
                    .col(AccessLog::SubjectId)
                    .col(AccessLog::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccessLogHead::Table)
                    .if_not_exists()
                    .col(integer(AccessLogHead::Id).primary_key())
                    .col(big_integer(AccessLogHead::Seq))
                    .col(blob(AccessLogHead::Hash))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessLogHead::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccessLog::Table).to_owned())
            .await
    }
}

/// A service's migrator with the access trail's migrations added, first: a service lists
/// only its own tables and cannot forget the trail's. The skeleton
/// (the runtime's `GrpcServer::run`) migrates with it. Migrations are matched by name,
/// so databases migrated when each service listed these itself are already up to date.
#[derive(Debug)]
pub struct WithAccessTrail<M>(std::marker::PhantomData<fn() -> M>);

#[async_trait::async_trait]
impl<M: MigratorTrait> MigratorTrait for WithAccessTrail<M> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let trail: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(CreateAccessLog),
            Box::new(crate::seal_migration::SealAccessLog),
        ];
        let names: Vec<String> = trail.iter().map(|m| m.name().to_owned()).collect();
        trail
            .into_iter()
            .chain(
                M::migrations()
                    .into_iter()
                    .filter(|m| !names.iter().any(|n| n == m.name())),
            )
            .collect()
    }
}
