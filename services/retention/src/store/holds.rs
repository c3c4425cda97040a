//! Legal holds.

use chrono::{DateTime, Utc};
use pdm_runtime::SubjectId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use super::{Store, entities::legal_hold};
use crate::error::Result;

impl Store {
    /// Stores a hold.
    pub async fn insert_hold(&self, row: legal_hold::Model) -> Result<legal_hold::Model> {
        Ok(legal_hold::Entity::insert(row.into_active_model())
            .exec_with_returning(&self.db)
            .await?)
    }

    /// A hold.
    pub async fn hold(&self, hold_id: &str) -> Result<Option<legal_hold::Model>> {
        Ok(legal_hold::Entity::find_by_id(hold_id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Releases a hold if it is active; a released hold keeps its first release.
    pub async fn release_hold(&self, hold_id: &str, by: &str, at: DateTime<Utc>) -> Result<()> {
        legal_hold::Entity::update_many()
            .set(legal_hold::ActiveModel {
                released_at: Set(Some(at)),
                released_by: Set(Some(by.to_owned())),
                ..Default::default()
            })
            .filter(legal_hold::Column::HoldId.eq(hold_id))
            .filter(legal_hold::Column::ReleasedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Holds, newest first: active ones only unless asked, of one subject (and those on
    /// every subject) when asked.
    pub async fn holds(
        &self,
        include_released: bool,
        subject: Option<&SubjectId>,
    ) -> Result<Vec<legal_hold::Model>> {
        let mut q = legal_hold::Entity::find()
            .order_by_desc(legal_hold::Column::PlacedAt)
            .order_by_desc(legal_hold::Column::HoldId);
        if !include_released {
            q = q.filter(legal_hold::Column::ReleasedAt.is_null());
        }
        if let Some(subject) = subject {
            q = q.filter(
                Condition::any()
                    .add(legal_hold::Column::SubjectId.eq(subject.to_string()))
                    .add(legal_hold::Column::SubjectId.eq("")),
            );
        }
        Ok(q.all(&self.db).await?)
    }

    /// Active holds.
    pub async fn active_hold_count(&self) -> Result<u64> {
        Ok(legal_hold::Entity::find()
            .filter(legal_hold::Column::ReleasedAt.is_null())
            .count(&self.db)
            .await?)
    }
}
