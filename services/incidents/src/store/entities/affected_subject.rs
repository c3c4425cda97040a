//! The `affected_subjects` table: who an incident affected, as the mesh answered.

use sea_orm::entity::prelude::*;

/// A subject found for an incident.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "affected_subjects")]
pub struct Model {
    /// The incident.
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: String,
    /// The subject (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// The services that held the subject's data, comma-separated in name order.
    pub services: String,
    /// When the subject was first found.
    pub found_at: ChronoDateTimeUtc,
    /// The subject's breach notice at the rights service, once told.
    pub notice_id: Option<String>,
    /// Where it stood when recorded (`domain::notice::Status` name).
    pub notice_status: Option<String>,
    /// When NotifyPeople recorded it.
    pub notified_at: Option<ChronoDateTimeUtc>,
    /// Region of residence (`pdm.common.v1.Region` name; `REGION_UNSPECIFIED`: identity
    /// does not know the subject; NULL: not asked yet).
    pub region: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
