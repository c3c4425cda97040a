//! Unsubscribe links in the database: issue, take (single use), forget.

use chrono::{DateTime, Utc};
use pdm_proto::consent::v1::Channel;
use pdm_runtime::SubjectId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};

use super::{Store, entities::unsubscribe_link};
use crate::error::Result;

pub use unsubscribe_link::Model as Link;

impl Store {
    /// Stores a new link; expired links of the same subject go at the same time, so a
    /// subject's rows stay bounded by what the mailer sent in one validity period.
    pub async fn issue_link(
        &self,
        link_id: &str,
        subject: &SubjectId,
        channel: Channel,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let subject = subject.to_string();
        unsubscribe_link::Entity::delete_many()
            .filter(unsubscribe_link::Column::SubjectId.eq(subject.as_str()))
            .filter(unsubscribe_link::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        unsubscribe_link::Entity::insert(unsubscribe_link::ActiveModel {
            link_id: Set(link_id.to_owned()),
            subject_id: Set(subject),
            channel: Set(channel.as_str_name().to_owned()),
            issued_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// A link by id.
    pub async fn link(&self, link_id: &str) -> Result<Option<Link>> {
        Ok(unsubscribe_link::Entity::find_by_id(link_id.to_owned())
            .one(&self.db)
            .await?)
    }
}

/// Marks a link used, in the caller's transaction; false when another click used it first
/// (only one wins).
pub(super) async fn use_link<C: ConnectionTrait>(
    conn: &C,
    link_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let updated = unsubscribe_link::Entity::update_many()
        .col_expr(unsubscribe_link::Column::UsedAt, Expr::value(Some(now)))
        .filter(unsubscribe_link::Column::LinkId.eq(link_id))
        .filter(unsubscribe_link::Column::UsedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    Ok(updated == 1)
}
