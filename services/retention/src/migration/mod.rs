//! The retention service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261201_000001_create_retention_tables;

/// Runs the retention migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(
            m20261201_000001_create_retention_tables::Migration,
        )]
    }
}
