//! The `accounts` table.

use sea_orm::entity::prelude::*;

/// One account; personal columns are sealed with the subject's data key.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    /// Subject id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Blind index of the normalised email (unique).
    pub email_index: Vec<u8>,
    /// Sealed email.
    pub email: Vec<u8>,
    /// Sealed first name.
    pub first_name: Vec<u8>,
    /// Sealed last name.
    pub last_name: Vec<u8>,
    /// Sealed E.164 phone.
    pub phone: Option<Vec<u8>>,
    /// Sealed birth date (YYYY-MM-DD).
    pub birth_date: Option<Vec<u8>>,
    /// Sealed organisation key of the email domain; null for free mail (and for accounts
    /// from before the column, until their next email change).
    pub organisation: Option<Vec<u8>>,
    /// Region code, e.g. `EEA`.
    pub region: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Processing restricted (Art. 18 GDPR).
    pub restricted: bool,
    /// Created.
    pub created_at: ChronoDateTimeUtc,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
