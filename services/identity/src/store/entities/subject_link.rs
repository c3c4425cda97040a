//! The `subject_links` table.

use sea_orm::entity::prelude::*;

/// A company client linked with a subject.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subject_links")]
pub struct Model {
    /// Subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// The client, as policies name it (`client:<name>`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub client: String,
    /// How the link came about: `created`, `signed_in` or `linked`.
    pub how: String,
    /// When.
    pub linked_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
