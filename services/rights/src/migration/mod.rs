//! The rights service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_rights_tables;
mod m20261203_000001_create_request_access;
mod m20261203_000002_add_outbox_file_key;
mod m20261203_000003_create_child_reports;
mod m20261203_000005_create_concerns;
mod m20261203_000006_add_deletion_reason;
mod m20261204_000001_add_outbox_delivery;
mod m20261204_000002_add_request_proof;
mod m20261205_000001_add_task_lease_owner;
mod m20261206_000001_create_notices;
mod m20261207_000001_index_task_queue;

/// Runs the rights migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_rights_tables::Migration),
            Box::new(m20261203_000001_create_request_access::Migration),
            Box::new(m20261203_000002_add_outbox_file_key::Migration),
            Box::new(m20261203_000003_create_child_reports::Migration),
            Box::new(m20261203_000005_create_concerns::Migration),
            Box::new(m20261203_000006_add_deletion_reason::Migration),
            Box::new(m20261204_000001_add_outbox_delivery::Migration),
            Box::new(m20261204_000002_add_request_proof::Migration),
            Box::new(m20261205_000001_add_task_lease_owner::Migration),
            Box::new(m20261206_000001_create_notices::Migration),
            Box::new(m20261207_000001_index_task_queue::Migration),
        ]
    }
}
