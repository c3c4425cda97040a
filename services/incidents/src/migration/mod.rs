//! The incidents service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261205_000001_create_incidents_tables;
mod m20261205_000002_create_affected_subjects;
mod m20261206_000003_add_people_notices;
mod m20261206_000004_create_assessments;
mod m20261206_000005_add_affected_region;

/// Runs the incidents migrations (the skeleton adds the access trail's).
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261205_000001_create_incidents_tables::Migration),
            Box::new(m20261205_000002_create_affected_subjects::Migration),
            Box::new(m20261206_000003_add_people_notices::Migration),
            Box::new(m20261206_000004_create_assessments::Migration),
            Box::new(m20261206_000005_add_affected_region::Migration),
        ]
    }
}
