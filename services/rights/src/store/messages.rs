//! The outbox in the database: queue, claim what is due, record each attempt's outcome.
//! A message that leaves the pending state (sent, failed or dropped) keeps no address and
//! no body. States: [`crate::domain::delivery`].

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    UpdateMany,
    sea_query::{Expr, ExprTrait},
};

use super::{MessageStatus, Store, entities::outbox};
use crate::{domain::delivery::ErrorCategory, error::Result};

/// An update of a pending message: one more attempt, and its address and body gone
/// unless it stays pending.
fn attempt(id: &str, finished: bool) -> UpdateMany<outbox::Entity> {
    let update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .filter(outbox::Column::MessageId.eq(id))
        // A message dropped meanwhile stays dropped.
        .filter(outbox::Column::Status.eq(MessageStatus::Pending));
    if finished { forget(update) } else { update }
}

/// Clears what a finished message no longer needs: the address and the body.
fn forget(update: UpdateMany<outbox::Entity>) -> UpdateMany<outbox::Entity> {
    update
        .col_expr(
            outbox::Column::Recipient,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(outbox::Column::Body, Expr::value(Vec::<u8>::new()))
        .col_expr(
            outbox::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

impl Store {
    /// Queues a message.
    pub async fn enqueue(&self, row: outbox::Model) -> Result<()> {
        outbox::Entity::insert(row.into_active_model())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Pending messages due at `now`, oldest first.
    pub async fn due_messages(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<outbox::Model>> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Status.eq(MessageStatus::Pending))
            .filter(
                Condition::any()
                    .add(outbox::Column::NextAttemptAt.is_null())
                    .add(outbox::Column::NextAttemptAt.lte(now)),
            )
            .order_by_asc(outbox::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Takes a due message for one attempt, until `until`: `false` when another sender
    /// (another replica) took it first. A sender that dies holding it lets it fall due
    /// again at `until`.
    pub async fn claim_message(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let claimed = outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(until))
            .filter(outbox::Column::MessageId.eq(id))
            .filter(outbox::Column::Status.eq(MessageStatus::Pending))
            .filter(
                Condition::any()
                    .add(outbox::Column::NextAttemptAt.is_null())
                    .add(outbox::Column::NextAttemptAt.lte(now)),
            )
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(claimed == 1)
    }

    /// Messages of a request, oldest first.
    pub async fn messages_of(&self, id: &str) -> Result<Vec<outbox::Model>> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::RequestId.eq(id))
            .order_by_asc(outbox::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Records a message as sent: it forgets its recipient and body, and its mailbox key
    /// too unless `keep_readable` (this never restores a key another path dropped).
    pub async fn message_sent(
        &self,
        id: &str,
        keep_readable: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut update = attempt(id, true)
            .col_expr(outbox::Column::Status, Expr::value(MessageStatus::Sent))
            .col_expr(outbox::Column::SentAt, Expr::value(now))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            );
        if !keep_readable {
            // The key first: a crash in between leaves the row marked, and the erasure's
            // shredding destroys the key again.
            self.destroy_key(super::KeyOf::Message(id)).await?;
            update = update.col_expr(
                outbox::Column::FileKey,
                Expr::value(Option::<Vec<u8>>::None),
            );
        }
        update.exec(&self.db).await?;
        Ok(())
    }

    /// Records a failed attempt to try again at `next`.
    pub async fn message_deferred(
        &self,
        id: &str,
        error: ErrorCategory,
        next: DateTime<Utc>,
    ) -> Result<()> {
        attempt(id, false)
            .col_expr(outbox::Column::LastError, Expr::value(error.as_str()))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(next))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a failed attempt as the last: the message is FAILED and forgets its
    /// recipient, body and mailbox key.
    pub async fn message_failed(&self, id: &str, error: ErrorCategory) -> Result<()> {
        self.destroy_key(super::KeyOf::Message(id)).await?;
        attempt(id, true)
            .col_expr(outbox::Column::Status, Expr::value(MessageStatus::Failed))
            .col_expr(outbox::Column::LastError, Expr::value(error.as_str()))
            .col_expr(
                outbox::Column::FileKey,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Drops a message that will never be sent, with its address, body and mailbox key.
    pub async fn drop_message(&self, id: &str) -> Result<()> {
        self.destroy_key(super::KeyOf::Message(id)).await?;
        forget(outbox::Entity::update_many())
            .col_expr(outbox::Column::Status, Expr::value(MessageStatus::Dropped))
            .col_expr(
                outbox::Column::FileKey,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .filter(outbox::Column::MessageId.eq(id))
            .filter(outbox::Column::Status.eq(MessageStatus::Pending))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
