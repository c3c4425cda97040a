//! Concerns in the database: file, find, list, close.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{ConcernStatus, Store, entities::concern};
use crate::error::Result;

impl Store {
    /// Files a concern.
    pub async fn insert_concern(&self, row: concern::Model) -> Result<()> {
        concern::Entity::insert(row.into_active_model())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A concern by id.
    pub async fn concern(&self, id: &str) -> Result<Option<concern::Model>> {
        Ok(concern::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Concerns, soonest due first.
    pub async fn concerns(&self, open_only: bool, limit: u64) -> Result<Vec<concern::Model>> {
        let mut q = concern::Entity::find()
            .order_by_asc(concern::Column::DueAt)
            .order_by_asc(concern::Column::ConcernId)
            .limit(limit);
        if open_only {
            q = q.filter(concern::Column::Status.eq(ConcernStatus::Open));
        }
        Ok(q.all(&self.db).await?)
    }

    /// Closes an open concern with its sealed answer; false when it was closed already.
    pub async fn close_concern(
        &self,
        id: &str,
        details: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let updated = concern::Entity::update_many()
            .set(concern::ActiveModel {
                status: Set(ConcernStatus::Closed),
                closed_at: Set(Some(now)),
                details: Set(details),
                updated_at: Set(now),
                ..Default::default()
            })
            .filter(concern::Column::ConcernId.eq(id))
            .filter(concern::Column::Status.eq(ConcernStatus::Open))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(updated == 1)
    }
}
