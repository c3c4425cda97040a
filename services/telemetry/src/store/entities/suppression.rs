//! The `suppressions` table: keyed hashes of erased subjects, so late events are dropped.

use sea_orm::entity::prelude::*;

/// An erased subject.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "suppressions")]
pub struct Model {
    /// Keyed hash of the subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_hash: Vec<u8>,
    /// When erased.
    pub erased_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
