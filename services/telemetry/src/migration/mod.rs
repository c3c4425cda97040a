//! The telemetry service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_telemetry_tables;
mod m20261203_000001_people_and_tracking_choices;
mod m20261207_000001_index_suppressions_by_time;

/// Runs the telemetry migrations (and the shared subject-key table).
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(pdm_crypto::migration::CreateSubjectKeys),
            Box::new(m20261129_000001_create_telemetry_tables::Migration),
            Box::new(m20261203_000001_people_and_tracking_choices::Migration),
            Box::new(pdm_runtime::erasure::CreateErasureReceipts),
            Box::new(m20261207_000001_index_suppressions_by_time::Migration),
        ]
    }
}
