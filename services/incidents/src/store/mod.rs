//! Persistence: the register, its versions and the authority notifications. Every change
//! is one write transaction that moves the incident from the version it read to the next,
//! appends that version and, for a notification, the notification itself.

pub mod assessments;
pub mod entities;
mod notices;

use chrono::{DateTime, Utc};
use pdm_runtime::db::begin_write;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::{
    domain::incident::{Change, Details, Status},
    error::{IncidentsError, Result},
};
use entities::{authority_notification, incident, incident_version};

/// An incident with its notifications, in the order sent.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The register row.
    pub incident: incident::Model,
    /// Its details, read back.
    pub details: Details,
    /// Its notifications.
    pub notifications: Vec<authority_notification::Model>,
}

/// A change to make to an incident, decided from what it was.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What it is.
    pub change: Change,
    /// The details after it.
    pub details: Details,
    /// The status after it.
    pub status: Status,
    /// Why it was closed (a close).
    pub closure_reason: Option<String>,
    /// The notification it records.
    pub notification: Option<authority_notification::Model>,
}

/// The incidents database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

fn details_json(details: &Details) -> Result<String> {
    serde_json::to_string(details).map_err(|_| IncidentsError::Internal("details not encoded"))
}

/// The details a row holds.
pub fn read_details(json: &str) -> Result<Details> {
    serde_json::from_str(json).map_err(|_| IncidentsError::Internal("stored details unreadable"))
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records a new incident, version 1.
    pub async fn open(&self, details: &Details, actor: &str, now: DateTime<Utc>) -> Result<Stored> {
        let id = uuid::Uuid::now_v7().to_string();
        let json = details_json(details)?;
        let row = incident::Model {
            incident_id: id.clone(),
            version: 1,
            status: Status::Open.as_str().to_owned(),
            details: json.clone(),
            aware_at: details.aware_at,
            opened_at: now,
            updated_at: now,
            closed_at: None,
            closure_reason: None,
        };
        let version = incident_version::Model {
            version_id: uuid::Uuid::now_v7().to_string(),
            incident_id: id,
            version: 1,
            change: Change::Opened.as_str().to_owned(),
            changed_by: actor.to_owned(),
            changed_at: now,
            status: Status::Open.as_str().to_owned(),
            details: json,
            notification_id: None,
            closure_reason: None,
        };
        let txn = begin_write(&self.db).await?;
        incident::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        incident_version::Entity::insert(version.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(Stored {
            incident: row,
            details: details.clone(),
            notifications: Vec::new(),
        })
    }

    /// An incident with its notifications.
    pub async fn get(&self, id: &str) -> Result<Option<Stored>> {
        let Some(row) = incident::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let notifications = self
            .notifications(std::slice::from_ref(&row.incident_id))
            .await?;
        Ok(Some(Stored {
            details: read_details(&row.details)?,
            incident: row,
            notifications,
        }))
    }

    /// The notifications of `ids`, in the order sent (then recorded).
    async fn notifications(&self, ids: &[String]) -> Result<Vec<authority_notification::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(authority_notification::Entity::find()
            .filter(authority_notification::Column::IncidentId.is_in(ids.iter().cloned()))
            .order_by_asc(authority_notification::Column::SentAt)
            .order_by_asc(authority_notification::Column::NotificationId)
            .all(&self.db)
            .await?)
    }

    /// `rows` with their notifications.
    async fn with_notifications(&self, rows: Vec<incident::Model>) -> Result<Vec<Stored>> {
        let ids: Vec<String> = rows.iter().map(|r| r.incident_id.clone()).collect();
        let all = self.notifications(&ids).await?;
        rows.into_iter()
            .map(|row| {
                let notifications = all
                    .iter()
                    .filter(|n| n.incident_id == row.incident_id)
                    .cloned()
                    .collect();
                Ok(Stored {
                    details: read_details(&row.details)?,
                    incident: row,
                    notifications,
                })
            })
            .collect()
    }

    /// A page of the register, newest opened first (ids are UUIDv7: they sort as opened),
    /// after the id `before` when given.
    pub async fn list(
        &self,
        status: Option<Status>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Stored>> {
        let mut q = incident::Entity::find().order_by_desc(incident::Column::IncidentId);
        if let Some(status) = status {
            q = q.filter(incident::Column::Status.eq(status.as_str()));
        }
        if let Some(before) = before {
            q = q.filter(incident::Column::IncidentId.lt(before));
        }
        let rows = q.limit(limit).all(&self.db).await?;
        self.with_notifications(rows).await
    }

    /// Every open incident (the register of open breaches stays small).
    pub async fn open_incidents(&self) -> Result<Vec<Stored>> {
        let rows = incident::Entity::find()
            .filter(incident::Column::Status.eq(Status::Open.as_str()))
            .order_by_asc(incident::Column::AwareAt)
            .all(&self.db)
            .await?;
        self.with_notifications(rows).await
    }

    /// Every version of an incident, oldest first.
    pub async fn versions(&self, id: &str) -> Result<Vec<incident_version::Model>> {
        Ok(incident_version::Entity::find()
            .filter(incident_version::Column::IncidentId.eq(id))
            .order_by_asc(incident_version::Column::Version)
            .all(&self.db)
            .await?)
    }

    /// Applies the change `plan` decides from the incident as it stands: only to an open
    /// incident, only at `expected_version` when given, and only if no other change landed
    /// in between (else [`IncidentsError::Conflict`]).
    pub async fn change(
        &self,
        id: &str,
        expected_version: Option<i32>,
        actor: &str,
        now: DateTime<Utc>,
        plan: impl FnOnce(&Stored) -> Result<Planned>,
    ) -> Result<Stored> {
        let txn = begin_write(&self.db).await?;
        let row = incident::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?
            .ok_or(IncidentsError::NotFound)?;
        if Status::parse(&row.status) != Some(Status::Open) {
            return Err(IncidentsError::Precondition(
                "CLOSED",
                "the incident is closed: it does not change again".to_owned(),
            ));
        }
        if expected_version.is_some_and(|v| v != row.version) {
            return Err(IncidentsError::Conflict {
                current: row.version,
            });
        }
        let notifications = authority_notification::Entity::find()
            .filter(authority_notification::Column::IncidentId.eq(id))
            .order_by_asc(authority_notification::Column::SentAt)
            .order_by_asc(authority_notification::Column::NotificationId)
            .all(&txn)
            .await?;
        let before = Stored {
            details: read_details(&row.details)?,
            incident: row.clone(),
            notifications,
        };
        let planned = plan(&before)?;
        let next = row.version + 1;
        let json = details_json(&planned.details)?;
        let closed_at = (planned.status == Status::Closed).then_some(now);
        let updated = incident::Entity::update_many()
            .col_expr(incident::Column::Version, Expr::value(next))
            .col_expr(
                incident::Column::Status,
                Expr::value(planned.status.as_str()),
            )
            .col_expr(incident::Column::Details, Expr::value(json.clone()))
            .col_expr(
                incident::Column::AwareAt,
                Expr::value(planned.details.aware_at),
            )
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .col_expr(incident::Column::ClosedAt, Expr::value(closed_at))
            .col_expr(
                incident::Column::ClosureReason,
                Expr::value(planned.closure_reason.clone()),
            )
            .filter(incident::Column::IncidentId.eq(id))
            .filter(incident::Column::Version.eq(row.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(IncidentsError::Conflict {
                current: row.version,
            });
        }
        let mut notifications = before.notifications;
        if let Some(notification) = &planned.notification {
            authority_notification::Entity::insert(notification.clone().into_active_model())
                .exec_without_returning(&txn)
                .await?;
            notifications.push(notification.clone());
            notifications.sort_by(|a, b| {
                (a.sent_at, &a.notification_id).cmp(&(b.sent_at, &b.notification_id))
            });
        }
        let version = incident_version::ActiveModel {
            version_id: Set(uuid::Uuid::now_v7().to_string()),
            incident_id: Set(id.to_owned()),
            version: Set(next),
            change: Set(planned.change.as_str().to_owned()),
            changed_by: Set(actor.to_owned()),
            changed_at: Set(now),
            status: Set(planned.status.as_str().to_owned()),
            details: Set(json.clone()),
            notification_id: Set(planned
                .notification
                .as_ref()
                .map(|n| n.notification_id.clone())),
            closure_reason: Set(planned.closure_reason.clone()),
        };
        incident_version::Entity::insert(version)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(Stored {
            incident: incident::Model {
                version: next,
                status: planned.status.as_str().to_owned(),
                details: json,
                aware_at: planned.details.aware_at,
                updated_at: now,
                closed_at,
                closure_reason: planned.closure_reason,
                ..row
            },
            details: planned.details,
            notifications,
        })
    }
}

/// Who is affected (`affected_subjects`).
impl Store {
    /// Records `found` (subject → services that held it) for `incident_id`: new subjects
    /// are added, recorded ones get the services newly seen. Returns how many were added.
    pub async fn record_affected(
        &self,
        incident_id: &str,
        found: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        use entities::affected_subject as a;
        let mut added = 0;
        for (subject, services) in found {
            let existing = a::Entity::find_by_id((incident_id.to_owned(), subject.clone()))
                .one(&self.db)
                .await?;
            match existing {
                None => {
                    let row = a::Model {
                        incident_id: incident_id.to_owned(),
                        subject_id: subject.clone(),
                        services: join(services.iter()),
                        found_at: now,
                        notice_id: None,
                        notice_status: None,
                        notified_at: None,
                        region: None,
                    };
                    // A concurrent search may have added it meanwhile: the key keeps one.
                    let inserted = a::Entity::insert(row.into_active_model())
                        .on_conflict_do_nothing()
                        .exec(&self.db)
                        .await?;
                    if !matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
                        added += 1;
                    }
                }
                Some(row) => {
                    let mut all: std::collections::BTreeSet<String> = row
                        .services
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let before = all.len();
                    all.extend(services.iter().cloned());
                    if all.len() != before {
                        let mut active = row.into_active_model();
                        active.services = Set(join(all.iter()));
                        a::Entity::update(active).exec(&self.db).await?;
                    }
                }
            }
        }
        Ok(added)
    }

    /// The subjects recorded for `incident_id` after `after`, in id order, at most `limit`.
    pub async fn affected(
        &self,
        incident_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<entities::affected_subject::Model>> {
        use entities::affected_subject as a;
        let mut query = a::Entity::find().filter(a::Column::IncidentId.eq(incident_id));
        if let Some(after) = after {
            query = query.filter(a::Column::SubjectId.gt(after));
        }
        Ok(query
            .order_by_asc(a::Column::SubjectId)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Up to `limit` subjects of `incident_id` whose region is not asked yet, in id order.
    pub async fn regions_missing(&self, incident_id: &str, limit: u64) -> Result<Vec<String>> {
        use entities::affected_subject as a;
        Ok(a::Entity::find()
            .select_only()
            .column(a::Column::SubjectId)
            .filter(a::Column::IncidentId.eq(incident_id))
            .filter(a::Column::Region.is_null())
            .order_by_asc(a::Column::SubjectId)
            .limit(limit)
            .into_tuple::<String>()
            .all(&self.db)
            .await?)
    }

    /// Records `subject_id`'s region (a `pdm.common.v1.Region` name) for `incident_id`.
    pub async fn set_region(
        &self,
        incident_id: &str,
        subject_id: &str,
        region: &str,
    ) -> Result<()> {
        use entities::affected_subject as a;
        a::Entity::update_many()
            .col_expr(a::Column::Region, Expr::value(region.to_owned()))
            .filter(a::Column::IncidentId.eq(incident_id))
            .filter(a::Column::SubjectId.eq(subject_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many subjects of `incident_id` are recorded with each region (None: not asked).
    pub async fn affected_by_region(
        &self,
        incident_id: &str,
    ) -> Result<Vec<(Option<String>, i64)>> {
        use entities::affected_subject as a;
        Ok(a::Entity::find()
            .select_only()
            .column(a::Column::Region)
            .column_as(a::Column::SubjectId.count(), "subjects")
            .filter(a::Column::IncidentId.eq(incident_id))
            .group_by(a::Column::Region)
            .into_tuple::<(Option<String>, i64)>()
            .all(&self.db)
            .await?)
    }

    /// How many subjects are recorded for `incident_id`.
    pub async fn affected_count(&self, incident_id: &str) -> Result<u64> {
        use entities::affected_subject as a;
        use sea_orm::PaginatorTrait;
        Ok(a::Entity::find()
            .filter(a::Column::IncidentId.eq(incident_id))
            .count(&self.db)
            .await?)
    }
}

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(",")
}
