//! People told: the texts of an incident's notices (`people_notices`) and each affected
//! subject's notice as recorded (`affected_subjects.notice_*`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{
    Store,
    entities::{affected_subject as affected, people_notice},
};
use crate::error::Result;

impl Store {
    /// The texts of `incident_id`'s notices: those fixed already, else `texts` now.
    pub async fn fix_notice_texts(
        &self,
        texts: people_notice::Model,
    ) -> Result<people_notice::Model> {
        let id = texts.incident_id.clone();
        // Two first calls at once: the key keeps one, and both read it back.
        people_notice::Entity::insert(texts.into_active_model())
            .on_conflict_do_nothing()
            .exec(&self.db)
            .await?;
        people_notice::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(crate::error::IncidentsError::Internal(
                "notice texts not kept",
            ))
    }

    /// The texts of `incident_id`'s notices, if they started.
    pub async fn notice_texts(&self, incident_id: &str) -> Result<Option<people_notice::Model>> {
        Ok(people_notice::Entity::find_by_id(incident_id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Subjects of `incident_id` not told yet, in id order, at most `limit`.
    pub async fn to_notify(&self, incident_id: &str, limit: u64) -> Result<Vec<String>> {
        Ok(affected::Entity::find()
            .select_only()
            .column(affected::Column::SubjectId)
            .filter(affected::Column::IncidentId.eq(incident_id))
            .filter(affected::Column::NotifiedAt.is_null())
            .order_by_asc(affected::Column::SubjectId)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// How many subjects of `incident_id` are not told yet.
    pub async fn to_notify_count(&self, incident_id: &str) -> Result<u64> {
        Ok(affected::Entity::find()
            .filter(affected::Column::IncidentId.eq(incident_id))
            .filter(affected::Column::NotifiedAt.is_null())
            .count(&self.db)
            .await?)
    }

    /// Records a subject's notice as rights stored it.
    pub async fn record_notified(
        &self,
        incident_id: &str,
        subject_id: &str,
        notice_id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        affected::Entity::update_many()
            .col_expr(affected::Column::NoticeId, Expr::value(notice_id))
            .col_expr(affected::Column::NoticeStatus, Expr::value(status))
            .col_expr(affected::Column::NotifiedAt, Expr::value(now))
            .filter(affected::Column::IncidentId.eq(incident_id))
            .filter(affected::Column::SubjectId.eq(subject_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
