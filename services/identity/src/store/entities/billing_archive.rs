//! The `billing_archive` table.

use sea_orm::entity::prelude::*;

/// A billing record kept after account closure under a legal obligation, sealed with a key of its own (stored wrapped beside it), and found by a blind index of the subject id.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_archive")]
pub struct Model {
    /// Archive entry id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub archive_id: String,
    /// Blind index of the subject id.
    pub subject_ref: Vec<u8>,
    /// Empty: the entry's own data key is in the key store (`archive:<archive_id>`).
    /// Entries archived before that kept it here, and are moved there at start.
    pub wrapped_key: Vec<u8>,
    /// Sealed JSON of the billing contact.
    pub record: Vec<u8>,
    /// When the account was closed: what the retention policy `billing.record` counts
    /// from when it purges (the entry has no expiry of its own).
    pub closed_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
