//! The web front's own table: server-side sessions. The browser holds a random token;
//! only its SHA-256 is stored, so a copy of the table opens no session.

pub mod migration;
mod session;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};

pub use session::Model as SessionRow;
use session::{ActiveModel, Column, Entity};

/// A signed-in person's session, as stored.
#[derive(Clone)]
pub struct Session {
    /// The stored key (hash of the cookie's token).
    pub key: String,
    /// Whose.
    pub subject_id: String,
    /// The identity service's session token, checked on every page.
    pub identity_token: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and the subject are never printed.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// The sessions table.
#[derive(Debug, Clone)]
pub struct Sessions {
    db: DatabaseConnection,
    idle: chrono::Duration,
    absolute: chrono::Duration,
}

impl Sessions {
    /// Sessions in `db`, ending after `idle` without use or `absolute` after sign-in.
    pub fn new(db: DatabaseConnection, idle: chrono::Duration, absolute: chrono::Duration) -> Self {
        Self { db, idle, absolute }
    }

    /// Stores a new session; `ends_by` (identity's own expiry) caps its absolute expiry.
    /// Sessions past their expiry are deleted on the way.
    pub async fn create(
        &self,
        key: &str,
        subject_id: &str,
        identity_token: &str,
        csrf: &str,
        ends_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), sea_orm::DbErr> {
        self.purge(now).await?;
        let mut expires = now + self.absolute;
        if let Some(ends_by) = ends_by {
            expires = expires.min(ends_by);
        }
        ActiveModel {
            key: Set(key.to_owned()),
            subject_id: Set(subject_id.to_owned()),
            identity_token: Set(identity_token.to_owned()),
            csrf: Set(csrf.to_owned()),
            created_at: Set(now.timestamp()),
            last_seen_at: Set(now.timestamp()),
            expires_at: Set(expires.timestamp()),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The live session under `key`, its last use moved to `now`; an expired one is
    /// deleted and `None`.
    pub async fn touch(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, sea_orm::DbErr> {
        let Some(row) = Entity::find_by_id(key.to_owned()).one(&self.db).await? else {
            return Ok(None);
        };
        let ts = now.timestamp();
        if row.expires_at <= ts || row.last_seen_at + self.idle.num_seconds() <= ts {
            self.delete(key).await?;
            return Ok(None);
        }
        Entity::update_many()
            .col_expr(Column::LastSeenAt, Expr::value(ts))
            .filter(Column::Key.eq(key))
            .exec(&self.db)
            .await?;
        Ok(Some(Session {
            key: row.key,
            subject_id: row.subject_id,
            identity_token: row.identity_token,
            csrf: row.csrf,
        }))
    }

    /// Ends a session.
    pub async fn delete(&self, key: &str) -> Result<(), sea_orm::DbErr> {
        Entity::delete_by_id(key.to_owned()).exec(&self.db).await?;
        Ok(())
    }

    /// Ends every session of a subject (after the account is deleted).
    pub async fn delete_subject(&self, subject_id: &str) -> Result<(), sea_orm::DbErr> {
        Entity::delete_many()
            .filter(Column::SubjectId.eq(subject_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes the sessions past either expiry.
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
        let ts = now.timestamp();
        let result = Entity::delete_many()
            .filter(
                Condition::any()
                    .add(Column::ExpiresAt.lte(ts))
                    .add(Column::LastSeenAt.lte(ts - self.idle.num_seconds())),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Every stored row (tests check what is kept).
    pub async fn rows(&self) -> Result<Vec<SessionRow>, sea_orm::DbErr> {
        Entity::find().all(&self.db).await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }
}
