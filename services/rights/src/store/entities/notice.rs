//! The `notices` table: breach notices to affected subjects (issue 21), one per
//! (incident, subject).

use sea_orm::entity::prelude::*;

/// A notice.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notices")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub notice_id: String,
    /// The incident (the incidents register's id).
    pub incident_id: String,
    /// The subject told.
    pub subject_id: String,
    /// What happened (clear language).
    pub what_happened: String,
    /// The likely consequences.
    pub likely_consequences: String,
    /// The measures taken.
    pub measures_taken: String,
    /// The DPO's contact as configured when stored (JSON of `pdm_runtime::dpo::Dpo`).
    pub dpo: String,
    /// `queued` (its message is `message_id`), `no_address` or `erased`.
    pub outcome: String,
    /// The outbox message carrying it.
    pub message_id: Option<String>,
    /// Stored.
    pub created_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
