//! Breach notices (`notices`) and the outbox messages that carry them.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};

use super::{
    Store,
    entities::{notice, outbox},
};
use crate::error::Result;

impl Store {
    /// A notice by id.
    pub async fn notice(&self, id: &str) -> Result<Option<notice::Model>> {
        Ok(notice::Entity::find_by_id(id.to_owned())
            .one(self.db())
            .await?)
    }

    /// The notice of `incident_id` to `subject_id`, if one was stored.
    pub async fn notice_of(
        &self,
        incident_id: &str,
        subject_id: &str,
    ) -> Result<Option<notice::Model>> {
        Ok(notice::Entity::find()
            .filter(notice::Column::IncidentId.eq(incident_id))
            .filter(notice::Column::SubjectId.eq(subject_id))
            .one(self.db())
            .await?)
    }

    /// The notices of `incident_id` to `subjects`, in subject order.
    pub async fn notices_to(
        &self,
        incident_id: &str,
        subjects: &[String],
    ) -> Result<Vec<notice::Model>> {
        Ok(notice::Entity::find()
            .filter(notice::Column::IncidentId.eq(incident_id))
            .filter(notice::Column::SubjectId.is_in(subjects.iter().cloned()))
            .order_by_asc(notice::Column::SubjectId)
            .all(self.db())
            .await?)
    }

    /// The notices to `subject_id` stored by `until`, oldest first (for their access package).
    pub async fn notices_of_subject(
        &self,
        subject_id: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<notice::Model>> {
        Ok(notice::Entity::find()
            .filter(notice::Column::SubjectId.eq(subject_id))
            .filter(notice::Column::CreatedAt.lte(until))
            .order_by_asc(notice::Column::CreatedAt)
            .order_by_asc(notice::Column::NoticeId)
            .all(self.db())
            .await?)
    }

    /// Stores a notice and its message together; `false` (nothing stored) when the subject
    /// already has a notice of that incident (another call got there first).
    pub async fn insert_notice(
        &self,
        row: notice::Model,
        message: Option<outbox::Model>,
    ) -> Result<bool> {
        let txn = pdm_runtime::db::begin_write(self.db()).await?;
        let inserted = notice::Entity::insert(row.into_active_model())
            .on_conflict_do_nothing()
            .exec(&txn)
            .await?;
        if matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
            return Ok(false);
        }
        if let Some(message) = message {
            outbox::Entity::insert(message.into_active_model())
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Outbox messages by id.
    pub async fn messages_by_id(&self, ids: &[String]) -> Result<Vec<outbox::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(outbox::Entity::find()
            .filter(outbox::Column::MessageId.is_in(ids.iter().cloned()))
            .all(self.db())
            .await?)
    }
}
