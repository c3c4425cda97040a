//! The `billing_contacts` table.

use sea_orm::entity::prelude::*;

/// The billing contact of an account, sealed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_contacts")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Sealed name.
    pub name: Vec<u8>,
    /// Sealed email.
    pub email: Vec<u8>,
    /// Sealed phone.
    pub phone: Option<Vec<u8>>,
    /// Sealed payment processor reference.
    pub processor_ref: Vec<u8>,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
