//! The `login_throttle` table.

use sea_orm::entity::prelude::*;

/// Failed sign-ins per email blind index.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttle")]
pub struct Model {
    /// Blind index of the email tried.
    #[sea_orm(primary_key, auto_increment = false)]
    pub email_index: Vec<u8>,
    /// Consecutive failures.
    pub failures: i32,
    /// Attempts wait until then.
    pub locked_until: Option<ChronoDateTimeUtc>,
    /// Last failure.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
