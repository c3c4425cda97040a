//! The console's accounts and sessions: operators (argon2id password, TOTP secret sealed
//! under a data key wrapped by the KEK) and their server-side sessions, kept apart from
//! the people's (another table, another cookie).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, Set, sea_query::Expr,
};

use super::{operator, operator_session};

pub use operator::Model as OperatorRow;

/// The field name the TOTP secret is sealed under (bound into the ciphertext).
pub const TOTP_FIELD: &str = "web_operators.totp_secret";

/// A live operator session.
#[derive(Clone)]
pub struct OperatorSession {
    /// The stored key (hash of the cookie's token).
    pub key: String,
    /// The operator's name.
    pub operator: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl std::fmt::Debug for OperatorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSession")
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

/// The operators and their sessions.
#[derive(Debug, Clone)]
pub struct Operators {
    db: DatabaseConnection,
    idle: chrono::Duration,
    absolute: chrono::Duration,
}

impl Operators {
    /// Operators in `db`; sessions end after `idle` unused or `absolute` after sign-in.
    pub fn new(db: DatabaseConnection, idle: chrono::Duration, absolute: chrono::Duration) -> Self {
        Self { db, idle, absolute }
    }

    /// Adds an operator; `false` when the name is taken.
    pub async fn add(
        &self,
        name: &str,
        password_hash: &str,
        wrapped_key: Vec<u8>,
        totp_sealed: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<bool, sea_orm::DbErr> {
        if self.get(name).await?.is_some() {
            return Ok(false);
        }
        operator::ActiveModel {
            name: Set(name.to_owned()),
            password_hash: Set(password_hash.to_owned()),
            wrapped_key: Set(wrapped_key),
            totp_sealed: Set(totp_sealed),
            last_totp_step: Set(None),
            created_at: Set(now.timestamp()),
            disabled: Set(false),
        }
        .insert(&self.db)
        .await?;
        Ok(true)
    }

    /// One operator.
    pub async fn get(&self, name: &str) -> Result<Option<OperatorRow>, sea_orm::DbErr> {
        operator::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await
    }

    /// Every operator, by name.
    pub async fn list(&self) -> Result<Vec<OperatorRow>, sea_orm::DbErr> {
        operator::Entity::find()
            .order_by_asc(operator::Column::Name)
            .all(&self.db)
            .await
    }

    /// Disables an operator and ends their sessions; `false` when there is none.
    pub async fn disable(&self, name: &str) -> Result<bool, sea_orm::DbErr> {
        let done = operator::Entity::update_many()
            .col_expr(operator::Column::Disabled, Expr::value(true))
            .filter(operator::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        operator_session::Entity::delete_many()
            .filter(operator_session::Column::Operator.eq(name))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Records that a sign-in used TOTP step `step`: `false` when that step or a later
    /// one was used already (a replayed code). One statement, so two replicas racing
    /// with the same code cannot both win.
    pub async fn use_step(&self, name: &str, step: i64) -> Result<bool, sea_orm::DbErr> {
        let done = operator::Entity::update_many()
            .col_expr(operator::Column::LastTotpStep, Expr::value(step))
            .filter(operator::Column::Name.eq(name))
            .filter(
                Condition::any()
                    .add(operator::Column::LastTotpStep.is_null())
                    .add(operator::Column::LastTotpStep.lt(step)),
            )
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Stores a new session of `operator`; expired sessions are deleted on the way.
    pub async fn create_session(
        &self,
        key: &str,
        operator: &str,
        csrf: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sea_orm::DbErr> {
        let ts = now.timestamp();
        operator_session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(operator_session::Column::ExpiresAt.lte(ts))
                    .add(operator_session::Column::LastSeenAt.lte(ts - self.idle.num_seconds())),
            )
            .exec(&self.db)
            .await?;
        operator_session::ActiveModel {
            key: Set(key.to_owned()),
            operator: Set(operator.to_owned()),
            csrf: Set(csrf.to_owned()),
            created_at: Set(ts),
            last_seen_at: Set(ts),
            expires_at: Set((now + self.absolute).timestamp()),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The live session under `key`, its last use moved to `now`; an expired one, or one
    /// of a disabled operator, is deleted and `None`.
    pub async fn touch(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OperatorSession>, sea_orm::DbErr> {
        let Some(row) = operator_session::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let ts = now.timestamp();
        let enabled = self.get(&row.operator).await?.is_some_and(|o| !o.disabled);
        if !enabled || row.expires_at <= ts || row.last_seen_at + self.idle.num_seconds() <= ts {
            self.end(key).await?;
            return Ok(None);
        }
        operator_session::Entity::update_many()
            .col_expr(operator_session::Column::LastSeenAt, Expr::value(ts))
            .filter(operator_session::Column::Key.eq(key))
            .exec(&self.db)
            .await?;
        Ok(Some(OperatorSession {
            key: row.key,
            operator: row.operator,
            csrf: row.csrf,
        }))
    }

    /// Ends a session.
    pub async fn end(&self, key: &str) -> Result<(), sea_orm::DbErr> {
        operator_session::Entity::delete_by_id(key.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
