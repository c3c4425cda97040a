//! The `concerns` table: complaints and reports of compromised data.

use sea_orm::entity::prelude::*;

use crate::store::status::ConcernStatus;

/// A concern.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "concerns")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub concern_id: String,
    /// `ConcernKind` name.
    pub kind: String,
    /// Open, or answered.
    pub status: ConcernStatus,
    /// Received.
    pub received_at: ChronoDateTimeUtc,
    /// When the privacy team owes an answer.
    pub due_at: ChronoDateTimeUtc,
    /// Answered.
    pub closed_at: Option<ChronoDateTimeUtc>,
    /// The subject it concerns, if the reporter named one.
    pub subject_id: Option<String>,
    /// The caller that filed it.
    pub reported_by: Option<String>,
    /// The concern's data key, wrapped by the KEK.
    pub wrapped_key: Vec<u8>,
    /// Sealed JSON: the reporter's contact, their words, the team's answer.
    pub details: Vec<u8>,
    /// Last change.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
