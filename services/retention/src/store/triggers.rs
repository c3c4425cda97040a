//! Trigger events per subject: the first time recorded stands.

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::RetentionTrigger;
use pdm_runtime::SubjectId;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};

use super::{Store, entities::subject_trigger};
use crate::error::{Result, RetentionError};

impl Store {
    /// Records that `trigger` happened for `subject` at `at`, unless it was recorded
    /// before; returns the time in force.
    pub async fn record_trigger(
        &self,
        subject: &SubjectId,
        trigger: RetentionTrigger,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        subject_trigger::Entity::insert(
            subject_trigger::Model {
                subject_id: subject.to_string(),
                trigger: trigger.as_str_name().to_owned(),
                occurred_at: at,
                recorded_at: now,
            }
            .into_active_model(),
        )
        .on_conflict_do_nothing()
        .exec(&self.db)
        .await?;
        let stored = subject_trigger::Entity::find_by_id((
            subject.to_string(),
            trigger.as_str_name().to_owned(),
        ))
        .one(&self.db)
        .await?
        .ok_or(RetentionError::Internal("recorded trigger vanished"))?;
        Ok(stored.occurred_at)
    }

    /// The triggers recorded for a subject.
    pub async fn triggers(&self, subject: &SubjectId) -> Result<Vec<subject_trigger::Model>> {
        Ok(subject_trigger::Entity::find()
            .filter(subject_trigger::Column::SubjectId.eq(subject.to_string()))
            .all(&self.db)
            .await?)
    }
}
