//! The consent service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_consent_tables;
mod m20261203_000010_add_unsubscribe_links;

/// Runs the consent migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_consent_tables::Migration),
            Box::new(m20261203_000010_add_unsubscribe_links::Migration),
            Box::new(pdm_runtime::erasure::CreateErasureReceipts),
        ]
    }
}
