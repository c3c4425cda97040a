//! The `recipients` table: the register.

use sea_orm::entity::prelude::*;

/// A recipient.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recipients")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub recipient_id: String,
    /// Unique key.
    pub key: String,
    /// Legal name.
    pub name: String,
    /// `RecipientRole` name.
    pub role: String,
    /// Country code.
    pub country: String,
    /// JSON list of purposes.
    pub purposes: String,
    /// JSON list of categories.
    pub data_categories: String,
    /// Contract or DPA reference.
    pub contract_reference: String,
    /// Contract date.
    pub contract_date: String,
    /// JSON list of certifications.
    pub certifications: String,
    /// Created.
    pub created_at: ChronoDateTimeUtc,
    /// Last changed.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
