//! The purge lease: one row, taken by an UPDATE that only matches while the lease is free
//! or expired. The database serialises concurrent UPDATEs of a row (PostgreSQL re-checks
//! the condition after the first writer commits; SQLite has one writer at a time), so two
//! runs can never both hold it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::{Store, entities::purge_lease};
use crate::error::Result;

const LEASE: &str = "purge";

impl Store {
    /// Takes the lease for `holder` until `until`, if it is free or expired at `now`.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        run_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let taken = purge_lease::Entity::update_many()
            .set(purge_lease::ActiveModel {
                holder: Set(Some(holder.to_owned())),
                run_id: Set(Some(run_id.to_owned())),
                acquired_at: Set(Some(now)),
                expires_at: Set(Some(until)),
                ..Default::default()
            })
            .filter(purge_lease::Column::Name.eq(LEASE))
            .filter(
                Condition::any()
                    .add(purge_lease::Column::Holder.is_null())
                    .add(purge_lease::Column::ExpiresAt.is_null())
                    .add(purge_lease::Column::ExpiresAt.lt(now)),
            )
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(taken == 1)
    }

    /// Extends `holder`'s lease to `until`; false when it holds the lease no more (it
    /// expired and another run took it, or it was given back).
    pub async fn renew_lease(&self, holder: &str, until: DateTime<Utc>) -> Result<bool> {
        let renewed = purge_lease::Entity::update_many()
            .set(purge_lease::ActiveModel {
                expires_at: Set(Some(until)),
                ..Default::default()
            })
            .filter(purge_lease::Column::Name.eq(LEASE))
            .filter(purge_lease::Column::Holder.eq(holder))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(renewed == 1)
    }

    /// Gives the lease back, if `holder` still holds it.
    pub async fn release_lease(&self, holder: &str) -> Result<()> {
        purge_lease::Entity::update_many()
            .set(purge_lease::ActiveModel {
                holder: Set(None),
                run_id: Set(None),
                acquired_at: Set(None),
                expires_at: Set(None),
                ..Default::default()
            })
            .filter(purge_lease::Column::Name.eq(LEASE))
            .filter(purge_lease::Column::Holder.eq(holder))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
