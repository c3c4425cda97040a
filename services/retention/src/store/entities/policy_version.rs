//! The `policy_versions` table: every version of every category's policy.

use sea_orm::entity::prelude::*;

/// One version of a category's policy.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_versions")]
pub struct Model {
    /// Category key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub category: String,
    /// Version, from 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// Years.
    pub years: i32,
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// `RetentionTrigger` name.
    pub trigger: String,
    /// `LegalBasis` name.
    pub legal_basis: String,
    /// The rule in words.
    pub description: String,
    /// Who made this version ("seed", "config" or an operator).
    pub changed_by: String,
    /// When it took effect.
    pub effective_from: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
