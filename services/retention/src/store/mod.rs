//! Persistence: policy versions, legal holds, subjects' triggers, purge runs and the
//! purge lease.

pub mod entities;
mod holds;
mod lease;
mod policies;
mod runs;
mod triggers;

use sea_orm::DatabaseConnection;

pub use policies::to_policy;
pub use runs::{CategoryCount, INTERRUPTED, RuleRecord, RunWithResults, ServiceOutcome};

/// Who made the versions written at start: version 1 of every seeded category.
pub const SEED_AUTHOR: &str = "seed";
/// Who made the versions written at start when the configuration changed a policy.
pub const CONFIG_AUTHOR: &str = "config";

/// The retention database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}
