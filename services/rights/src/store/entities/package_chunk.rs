//! The `package_chunks` table: a service's export, sealed, in pieces.

use sea_orm::entity::prelude::*;

/// A sealed piece of an export: newline-separated JSON records.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "package_chunks")]
pub struct Model {
    /// Request.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Service.
    #[sea_orm(primary_key, auto_increment = false)]
    pub service: String,
    /// Order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    /// Sealed bytes.
    pub chunk: Vec<u8>,
}

impl ActiveModelBehavior for ActiveModel {}
