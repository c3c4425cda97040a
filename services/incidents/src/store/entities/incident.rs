//! The `incidents` table: each incident as it now stands.

use sea_orm::entity::prelude::*;

/// An incident, current version.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incidents")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: String,
    /// Current version.
    pub version: i32,
    /// `open` or `closed`.
    pub status: String,
    /// The details (JSON of `domain::incident::Details`).
    pub details: String,
    /// When we became aware (a copy of the details', for the clocks' queries).
    pub aware_at: ChronoDateTimeUtc,
    /// Opened.
    pub opened_at: ChronoDateTimeUtc,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
    /// Closed.
    pub closed_at: Option<ChronoDateTimeUtc>,
    /// Why it was closed.
    pub closure_reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
