//! The `incident_versions` table: every version of every incident, never changed.

use sea_orm::entity::prelude::*;

/// A version.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incident_versions")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub version_id: String,
    /// The incident.
    pub incident_id: String,
    /// Its number (1, 2, ...).
    pub version: i32,
    /// `domain::incident::Change` name.
    pub change: String,
    /// Who made it.
    pub changed_by: String,
    /// When.
    pub changed_at: ChronoDateTimeUtc,
    /// Status after it.
    pub status: String,
    /// Details after it (JSON).
    pub details: String,
    /// The notification it recorded.
    pub notification_id: Option<String>,
    /// Why the incident was closed.
    pub closure_reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
