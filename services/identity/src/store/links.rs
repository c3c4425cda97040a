//! Links between company clients and subjects.

use chrono::{DateTime, Utc};
use pdm_runtime::SubjectId;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set, sea_query::OnConflict};

use super::{Store, entities::subject_link};
use crate::error::Result;

impl Store {
    /// Links `client` with `subject` (`how`: created, signed_in, linked); a second link
    /// keeps the first.
    pub async fn link(
        &self,
        subject: &SubjectId,
        client: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        subject_link::Entity::insert(subject_link::ActiveModel {
            subject_id: Set(subject.to_string()),
            client: Set(client.to_owned()),
            how: Set(how.to_owned()),
            linked_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                subject_link::Column::SubjectId,
                subject_link::Column::Client,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Whether `client` is linked with `subject`.
    pub async fn linked(&self, subject: &SubjectId, client: &str) -> Result<bool> {
        let n = subject_link::Entity::find()
            .filter(subject_link::Column::SubjectId.eq(subject.to_string()))
            .filter(subject_link::Column::Client.eq(client))
            .count(&self.db)
            .await?;
        Ok(n > 0)
    }
}
