//! The `unsubscribe_links` table: links issued for promotional messages.

use sea_orm::entity::prelude::*;

/// An issued link. The token is not stored: it is the id and its signature.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unsubscribe_links")]
pub struct Model {
    /// Random id (base64url of 16 bytes).
    #[sea_orm(primary_key, auto_increment = false)]
    pub link_id: String,
    /// Subject id.
    pub subject_id: String,
    /// Channel name (`CHANNEL_EMAIL`, …).
    pub channel: String,
    /// When it was issued.
    pub issued_at: ChronoDateTimeUtc,
    /// When it stops working.
    pub expires_at: ChronoDateTimeUtc,
    /// When it recorded its opt-out.
    pub used_at: Option<ChronoDateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
