//! Sessions and sign-in throttling.

use chrono::{DateTime, Duration, Utc};
use pdm_runtime::SubjectId;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{
    Store,
    entities::{login_throttle, session},
};
use crate::{domain::throttle, error::Result};

impl Store {
    /// Stores a session by the hash of its token.
    pub async fn create_session(
        &self,
        subject: &SubjectId,
        token_hash: Vec<u8>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<DateTime<Utc>> {
        let expires_at = now + ttl;
        session::Entity::insert(session::ActiveModel {
            token_hash: Set(token_hash),
            subject_id: Set(subject.to_string()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        })
        .exec(&self.db)
        .await?;
        Ok(expires_at)
    }

    /// The subject and expiry of a live session.
    pub async fn live_session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<(String, DateTime<Utc>)>> {
        let row = session::Entity::find_by_id(token_hash.to_vec())
            .one(&self.db)
            .await?;
        Ok(row
            .filter(|s| s.expires_at > now)
            .map(|s| (s.subject_id, s.expires_at)))
    }

    /// How long sign-in for this email must wait, if at all.
    pub async fn sign_in_wait(
        &self,
        email_index: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>> {
        let row = login_throttle::Entity::find_by_id(email_index.to_vec())
            .one(&self.db)
            .await?;
        Ok(throttle::wait(row.and_then(|r| r.locked_until), now))
    }

    /// Failures counted under this throttle key.
    pub async fn failure_count(&self, key: &[u8]) -> Result<u32> {
        let row = login_throttle::Entity::find_by_id(key.to_vec())
            .one(&self.db)
            .await?;
        Ok(row.map_or(0, |r| u32::try_from(r.failures).unwrap_or(0)))
    }

    /// Counts a failed sign-in and locks further attempts per the throttle schedule.
    pub async fn record_failure(&self, email_index: &[u8], now: DateTime<Utc>) -> Result<()> {
        login_throttle::Entity::insert(login_throttle::ActiveModel {
            email_index: Set(email_index.to_vec()),
            failures: Set(1),
            locked_until: Set(None),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(login_throttle::Column::EmailIndex)
                .value(
                    login_throttle::Column::Failures,
                    Expr::col((login_throttle::Entity, login_throttle::Column::Failures)).add(1),
                )
                .value(login_throttle::Column::UpdatedAt, now)
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        let failures = login_throttle::Entity::find_by_id(email_index.to_vec())
            .one(&self.db)
            .await?
            .map_or(1, |r| r.failures);
        let lock = throttle::lock_after(u32::try_from(failures).unwrap_or(u32::MAX));
        if lock > Duration::zero() {
            login_throttle::Entity::update_many()
                .col_expr(login_throttle::Column::LockedUntil, Expr::value(now + lock))
                .filter(login_throttle::Column::EmailIndex.eq(email_index.to_vec()))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Forgets failures after a successful sign-in.
    pub async fn clear_failures(&self, email_index: &[u8]) -> Result<()> {
        login_throttle::Entity::delete_by_id(email_index.to_vec())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

impl Store {
    /// `(record id, created, expires)` of the subject's sessions. The record id comes from
    /// the token hash: unique even for sessions opened in the same instant, stable, and
    /// of no use for signing in.
    pub async fn sessions_of(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<(String, DateTime<Utc>, DateTime<Utc>)>> {
        let rows = session::Entity::find()
            .filter(session::Column::SubjectId.eq(subject.to_string()))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| {
                let id: String = s
                    .token_hash
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                (format!("session-{id}"), s.created_at, s.expires_at)
            })
            .collect())
    }
}
