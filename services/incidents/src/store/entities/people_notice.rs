//! The `people_notices` table: what an incident's breach notices to people say, fixed by
//! the first NotifyPeople.

use sea_orm::entity::prelude::*;

/// The texts of an incident's notices.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "people_notices")]
pub struct Model {
    /// The incident.
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: String,
    /// What happened, in clear language.
    pub what_happened: String,
    /// The incident's likely consequences when the notices started.
    pub likely_consequences: String,
    /// The incident's measures taken when the notices started.
    pub measures_taken: String,
    /// Who started them.
    pub started_by: String,
    /// When.
    pub started_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
