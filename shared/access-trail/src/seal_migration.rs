//! Records how each trail is sealed: `access_log_head.scheme` is 1 for the public SHA-256
//! chain of the first trails and 2 for the keyed MAC chain. A service re-seals a scheme-1
//! trail with its key once, at its first start after this migration (see
//! [`crate::store::reseal`]). Listed after [`crate::migration::CreateAccessLog`] in every
//! service's migrator.

use sea_orm_migration::{prelude::*, schema::*};

use crate::migration::AccessLogHead;

/// Adds the head's seal scheme.
#[derive(Debug)]
pub struct SealAccessLog;

impl MigrationName for SealAccessLog {
    fn name(&self) -> &str {
        "m20261210_000000_seal_access_log"
    }
}

/// The new column.
#[derive(DeriveIden)]
pub enum HeadScheme {
    /// 1: SHA-256 chain (before keys); 2: HMAC-SHA256 chain.
    Scheme,
}

#[async_trait::async_trait]
impl MigrationTrait for SealAccessLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Trails that exist were written with SHA-256: they are scheme 1 until re-sealed.
        manager
            .alter_table(
                Table::alter()
                    .table(AccessLogHead::Table)
                    .add_column(integer(HeadScheme::Scheme).default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AccessLogHead::Table)
                    .drop_column(HeadScheme::Scheme)
                    .to_owned(),
            )
            .await
    }
}
