//! The `authority_notifications` table: what was sent to an authority, and when.

use sea_orm::entity::prelude::*;

/// A notification.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authority_notifications")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub notification_id: String,
    /// The incident.
    pub incident_id: String,
    /// Regime key.
    pub regime: String,
    /// `domain::notification::Phase` name.
    pub phase: String,
    /// When it was sent.
    pub sent_at: ChronoDateTimeUtc,
    /// What was sent.
    pub content: String,
    /// Reference.
    pub reference: String,
    /// Why it was late.
    pub delay_reason: String,
    /// When it was recorded.
    pub recorded_at: ChronoDateTimeUtc,
    /// Who recorded it.
    pub recorded_by: String,
}

impl ActiveModelBehavior for ActiveModel {}
