//! The `purge_service_results` table: what each service of a run did.

use sea_orm::entity::prelude::*;

/// One service's part in a run.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purge_service_results")]
pub struct Model {
    /// Run.
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    /// Service name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub service: String,
    /// Order within the run.
    pub position: i32,
    /// Whether it answered.
    pub ok: bool,
    /// JSON list of per-category counts.
    pub results: String,
    /// Why it did not answer (no personal data).
    pub error: String,
    /// Duration of the last attempt.
    pub duration_ms: i64,
    /// Attempts so far.
    pub attempts: i32,
}

impl ActiveModelBehavior for ActiveModel {}
