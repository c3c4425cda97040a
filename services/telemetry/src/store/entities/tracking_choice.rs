//! The `tracking_choices` table: logged-out visitors' choices per tracking category,
//! keyed by the device pseudonym (never the raw device identifier).

use sea_orm::entity::prelude::*;

/// One recorded choice; a device's latest one applies.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tracking_choices")]
pub struct Model {
    /// Row id: a later choice has a higher one.
    #[sea_orm(primary_key)]
    pub choice_id: i64,
    /// Keyed hash of the device identifier.
    pub device_hash: Vec<u8>,
    /// Analytics agreed to.
    pub analytics: bool,
    /// Advertising agreed to.
    pub advertising: bool,
    /// A Global Privacy Control signal came with the choice.
    pub gpc: bool,
    /// Cookie policy version shown.
    pub policy_version: String,
    /// SHA-256 of the banner text shown.
    pub text_hash: String,
    /// When it was recorded.
    pub recorded_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
