//! The `web_packages` table.

use sea_orm::entity::prelude::*;

/// The package of a completed access request, sealed: rights lets it be downloaded once,
/// the person may read it until it expires.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_packages")]
pub struct Model {
    /// The rights request id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Whose.
    pub subject_id: String,
    /// Its data key, wrapped under the key-encryption key for this subject.
    pub wrapped_key: Vec<u8>,
    /// The package (JSON, pdm.export.v1), sealed with that key.
    pub sealed: Vec<u8>,
    /// When it expires (Unix seconds): deleted then.
    pub expires_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
