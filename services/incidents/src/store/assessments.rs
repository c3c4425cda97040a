//! Persistence of the impact assessments: the register (`assessments`) and every version
//! (`assessment_versions`). A revision is one write transaction that moves the assessment
//! from the version it was made from to the next and appends that version.

use chrono::{DateTime, Utc};
use pdm_runtime::db::begin_write;
use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{
    Store,
    entities::{assessment, assessment_version},
};
use crate::{
    domain::assessment::AssessmentDetails,
    error::{IncidentsError, Result},
};

/// An assessment with its details read back.
#[derive(Debug, Clone)]
pub struct StoredAssessment {
    /// The register row.
    pub row: assessment::Model,
    /// Its details.
    pub details: AssessmentDetails,
}

fn encode(details: &AssessmentDetails) -> Result<String> {
    serde_json::to_string(details)
        .map_err(|_| IncidentsError::Internal("assessment details not encoded"))
}

/// The details a row holds.
pub fn decode(json: &str) -> Result<AssessmentDetails> {
    serde_json::from_str(json)
        .map_err(|_| IncidentsError::Internal("stored assessment details unreadable"))
}

fn stored(row: assessment::Model) -> Result<StoredAssessment> {
    Ok(StoredAssessment {
        details: decode(&row.details)?,
        row,
    })
}

impl Store {
    /// Records a new assessment, version 1.
    pub async fn record_assessment(
        &self,
        details: &AssessmentDetails,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredAssessment> {
        let id = uuid::Uuid::now_v7().to_string();
        let json = encode(details)?;
        let row = assessment::Model {
            assessment_id: id.clone(),
            version: 1,
            details: json.clone(),
            next_review_at: details.next_review_at,
            recorded_at: now,
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        let version = assessment_version::Model {
            version_id: uuid::Uuid::now_v7().to_string(),
            assessment_id: id,
            version: 1,
            details: json,
            changed_by: actor.to_owned(),
            changed_at: now,
        };
        let txn = begin_write(&self.db).await?;
        assessment::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        assessment_version::Entity::insert(version.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(StoredAssessment {
            row,
            details: details.clone(),
        })
    }

    /// Replaces an assessment's details, only from `expected_version` and only if no other
    /// revision landed in between (else [`IncidentsError::Conflict`]).
    pub async fn revise_assessment(
        &self,
        id: &str,
        expected_version: i32,
        details: &AssessmentDetails,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredAssessment> {
        let json = encode(details)?;
        let txn = begin_write(&self.db).await?;
        let row = assessment::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?
            .ok_or(IncidentsError::NotFound)?;
        if row.version != expected_version {
            return Err(IncidentsError::Conflict {
                current: row.version,
            });
        }
        let next = row.version + 1;
        let updated = assessment::Entity::update_many()
            .col_expr(assessment::Column::Version, Expr::value(next))
            .col_expr(assessment::Column::Details, Expr::value(json.clone()))
            .col_expr(
                assessment::Column::NextReviewAt,
                Expr::value(details.next_review_at),
            )
            .col_expr(assessment::Column::UpdatedAt, Expr::value(now))
            .col_expr(assessment::Column::UpdatedBy, Expr::value(actor))
            .filter(assessment::Column::AssessmentId.eq(id))
            .filter(assessment::Column::Version.eq(row.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(IncidentsError::Conflict {
                current: row.version,
            });
        }
        let version = assessment_version::Model {
            version_id: uuid::Uuid::now_v7().to_string(),
            assessment_id: id.to_owned(),
            version: next,
            details: json.clone(),
            changed_by: actor.to_owned(),
            changed_at: now,
        };
        assessment_version::Entity::insert(version.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(StoredAssessment {
            row: assessment::Model {
                version: next,
                details: json,
                next_review_at: details.next_review_at,
                updated_at: now,
                updated_by: actor.to_owned(),
                ..row
            },
            details: details.clone(),
        })
    }

    /// An assessment.
    pub async fn assessment(&self, id: &str) -> Result<Option<StoredAssessment>> {
        assessment::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(stored)
            .transpose()
    }

    /// Every version of an assessment, oldest first.
    pub async fn assessment_versions(&self, id: &str) -> Result<Vec<assessment_version::Model>> {
        Ok(assessment_version::Entity::find()
            .filter(assessment_version::Column::AssessmentId.eq(id))
            .order_by_asc(assessment_version::Column::Version)
            .all(&self.db)
            .await?)
    }

    /// A page of the register, newest recorded first (ids are UUIDv7: they sort as
    /// recorded), after the id `before` when given.
    pub async fn assessments(
        &self,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StoredAssessment>> {
        let mut q = assessment::Entity::find().order_by_desc(assessment::Column::AssessmentId);
        if let Some(before) = before {
            q = q.filter(assessment::Column::AssessmentId.lt(before));
        }
        q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored)
            .collect()
    }

    /// The assessments whose review is due at `now`, oldest review date first.
    pub async fn reviews_due(&self, now: DateTime<Utc>) -> Result<Vec<StoredAssessment>> {
        assessment::Entity::find()
            .filter(assessment::Column::NextReviewAt.lte(now))
            .order_by_asc(assessment::Column::NextReviewAt)
            .order_by_asc(assessment::Column::AssessmentId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored)
            .collect()
    }

    /// How many assessments' reviews are due at `now`.
    pub async fn reviews_due_count(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(assessment::Entity::find()
            .filter(assessment::Column::NextReviewAt.lte(now))
            .count(&self.db)
            .await?)
    }
}
