//! The `web_operators` table: the privacy team's console accounts.

use sea_orm::entity::prelude::*;

/// One operator.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_operators")]
pub struct Model {
    /// Account name (`pdm web operator add <name>`), recorded in the access trail.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// The data key sealing the TOTP secret, wrapped under the KEK for this operator.
    pub wrapped_key: Vec<u8>,
    /// The TOTP secret, sealed.
    pub totp_sealed: Vec<u8>,
    /// The last TOTP step a sign-in used: a code of it or before is refused.
    pub last_totp_step: Option<i64>,
    /// When the account was made (Unix seconds).
    pub created_at: i64,
    /// Disabled accounts cannot sign in; their sessions end.
    pub disabled: bool,
}

impl ActiveModelBehavior for ActiveModel {}
