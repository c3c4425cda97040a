//! The web front's own tables: server-side sessions (the browser holds a random token;
//! only its SHA-256 is stored, so a copy of the table opens no session) and which rights
//! requests each person made on the pages.

pub mod migration;
mod operator;
mod operator_session;
pub mod operators;
mod operators_migration;
mod package;
mod request;
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

    /// Records that `subject` made the rights request `request_id` here (again: nothing).
    pub async fn add_request(
        &self,
        subject_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sea_orm::DbErr> {
        if request::Entity::find_by_id(request_id.to_owned())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Ok(());
        }
        request::ActiveModel {
            request_id: Set(request_id.to_owned()),
            subject_id: Set(subject_id.to_owned()),
            created_at: Set(now.timestamp()),
            download_token: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Keeps the download token the rights service gave for `request_id`.
    pub async fn keep_download_token(
        &self,
        request_id: &str,
        token: &str,
    ) -> Result<(), sea_orm::DbErr> {
        request::Entity::update_many()
            .col_expr(request::Column::DownloadToken, Expr::value(token))
            .filter(request::Column::RequestId.eq(request_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The request ids `subject` made here, newest first.
    pub async fn requests_of(&self, subject_id: &str) -> Result<Vec<String>, sea_orm::DbErr> {
        use sea_orm::QueryOrder as _;
        Ok(request::Entity::find()
            .filter(request::Column::SubjectId.eq(subject_id))
            .order_by_desc(request::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.request_id)
            .collect())
    }

    /// Whether `subject` made the request `request_id` here: `Some(download token kept)`.
    pub async fn own_request(
        &self,
        subject_id: &str,
        request_id: &str,
    ) -> Result<Option<Option<String>>, sea_orm::DbErr> {
        Ok(request::Entity::find_by_id(request_id.to_owned())
            .one(&self.db)
            .await?
            .filter(|r| r.subject_id == subject_id)
            .map(|r| r.download_token))
    }

    /// Forgets the requests and packages of a subject (after the account is deleted).
    pub async fn delete_requests_of(&self, subject_id: &str) -> Result<(), sea_orm::DbErr> {
        request::Entity::delete_many()
            .filter(request::Column::SubjectId.eq(subject_id))
            .exec(&self.db)
            .await?;
        package::Entity::delete_many()
            .filter(package::Column::SubjectId.eq(subject_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Keeps a sealed package until `expires_at`.
    pub async fn keep_package(
        &self,
        request_id: &str,
        subject_id: &str,
        wrapped_key: Vec<u8>,
        sealed: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), sea_orm::DbErr> {
        package::Entity::delete_by_id(request_id.to_owned())
            .exec(&self.db)
            .await?;
        package::ActiveModel {
            request_id: Set(request_id.to_owned()),
            subject_id: Set(subject_id.to_owned()),
            wrapped_key: Set(wrapped_key),
            sealed: Set(sealed),
            expires_at: Set(expires_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Deletes the packages past their expiry: how many.
    pub async fn delete_expired_packages(&self, now: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
        Ok(package::Entity::delete_many()
            .filter(package::Column::ExpiresAt.lte(now.timestamp()))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// The sealed package of `subject`'s request, `(wrapped key, sealed)`, if kept and not
    /// expired; expired packages are deleted on the way.
    pub async fn package(
        &self,
        subject_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, sea_orm::DbErr> {
        self.delete_expired_packages(now).await?;
        Ok(package::Entity::find_by_id(request_id.to_owned())
            .one(&self.db)
            .await?
            .filter(|p| p.subject_id == subject_id)
            .map(|p| (p.wrapped_key, p.sealed)))
    }
}
