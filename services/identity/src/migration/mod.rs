//! The identity service's schema. One file per migration; never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_identity_tables;
mod m20261203_000001_create_subject_links;
mod m20261203_000002_add_special_categories;
mod m20261203_000003_add_account_organisation;
mod m20261203_000004_billing_archive_without_expiry;
mod m20261205_000001_shared_erasure_receipts;

/// Runs the identity migrations (and the shared subject-key table).
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(pdm_crypto::migration::CreateSubjectKeys),
            Box::new(m20261129_000001_create_identity_tables::Migration),
            Box::new(m20261203_000001_create_subject_links::Migration),
            Box::new(m20261203_000002_add_special_categories::Migration),
            Box::new(m20261203_000003_add_account_organisation::Migration),
            Box::new(m20261203_000004_billing_archive_without_expiry::Migration),
            Box::new(m20261205_000001_shared_erasure_receipts::Migration),
        ]
    }
}
