//! Per-subject state: suppression after erasure, restriction, the background erasure
//! queue, erasure receipts; crash reports and aggregates.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{
    Store,
    entities::{aggregate, crash, erasure, erasure_queue, restriction, suppression},
};
use crate::error::Result;

impl Store {
    /// Keyed hashes of every erased subject (loaded at start).
    pub async fn suppressed(&self) -> Result<Vec<Vec<u8>>> {
        Ok(suppression::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| s.subject_hash)
            .collect())
    }

    /// Restricted subjects (loaded at start).
    pub async fn restricted(&self) -> Result<Vec<String>> {
        Ok(restriction::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.subject_id)
            .collect())
    }

    /// Sets or lifts a restriction.
    pub async fn set_restricted(
        &self,
        subject: &str,
        restricted: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if restricted {
            restriction::Entity::insert(restriction::ActiveModel {
                subject_id: Set(subject.to_owned()),
                restricted_at: Set(now),
            })
            .on_conflict_do_nothing()
            .exec(&self.db)
            .await?;
        } else {
            restriction::Entity::delete_by_id(subject.to_owned())
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Erasure, the part that must be immediate: the key goes (every sealed row becomes
    /// unreadable at once), the subject joins the suppression list and the background
    /// deletion queue, crash reports go. Constant time whatever the number of events.
    /// Returns `(key destroyed, crash reports deleted)`.
    pub async fn erase_now(&self, subject: &str, now: DateTime<Utc>) -> Result<(bool, u64)> {
        let txn = self.db.begin().await?;
        let key_destroyed = self.keys.destroy(&txn, subject).await?;
        suppression::Entity::insert(suppression::ActiveModel {
            subject_hash: Set(self.subject_hash(subject)),
            erased_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await?;
        erasure_queue::Entity::insert(erasure_queue::ActiveModel {
            subject_id: Set(subject.to_owned()),
            queued_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await?;
        let crashes = crash::Entity::delete_many()
            .filter(crash::Column::SubjectId.eq(subject))
            .exec(&txn)
            .await?
            .rows_affected;
        restriction::Entity::delete_by_id(subject.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok((key_destroyed, crashes))
    }

    /// Subjects whose rows are still to be deleted.
    pub async fn erasure_queue(&self) -> Result<Vec<String>> {
        Ok(erasure_queue::Entity::find()
            .order_by_asc(erasure_queue::Column::QueuedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|q| q.subject_id)
            .collect())
    }

    /// Removes a subject from the queue once its rows are gone.
    pub async fn dequeue_erasure(&self, subject: &str) -> Result<()> {
        erasure_queue::Entity::delete_by_id(subject.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The stored receipt of an erasure request: `(subject ref, encoded receipt)`.
    pub async fn erasure(&self, request_id: &str) -> Result<Option<(String, String)>> {
        let row = erasure::Entity::find_by_id(request_id.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.map(|r| (r.subject_ref, r.receipt)))
    }

    /// Stores a receipt; `false` if the request id was stored meanwhile.
    pub async fn save_erasure(
        &self,
        request_id: &str,
        subject_ref: &str,
        receipt: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let result = erasure::Entity::insert(erasure::ActiveModel {
            request_id: Set(request_id.to_owned()),
            subject_ref: Set(subject_ref.to_owned()),
            receipt: Set(receipt.to_owned()),
            completed_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec(&self.db)
        .await?;
        Ok(!matches!(result, sea_orm::TryInsertResult::Conflicted))
    }

    /// Stores a crash report.
    pub async fn insert_crash(&self, row: crash::Model) -> Result<()> {
        crash::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The subject's crash reports.
    pub async fn crashes_of(&self, subject: &str) -> Result<Vec<crash::Model>> {
        Ok(crash::Entity::find()
            .filter(crash::Column::SubjectId.eq(subject))
            .order_by_asc(crash::Column::CrashId)
            .all(&self.db)
            .await?)
    }

    /// Deletes crash reports that occurred before `cutoff`, sparing held subjects.
    pub async fn purge_crashes(
        &self,
        cutoff: DateTime<Utc>,
        held: &[String],
        dry_run: bool,
    ) -> Result<(u64, u64)> {
        let expired = || crash::Entity::find().filter(crash::Column::OccurredAt.lt(cutoff));
        let held_count = if held.is_empty() {
            0
        } else {
            expired()
                .filter(crash::Column::SubjectId.is_in(held.to_vec()))
                .count(&self.db)
                .await?
        };
        let not_held = sea_orm::Condition::any()
            .add(crash::Column::SubjectId.is_null())
            .add(crash::Column::SubjectId.is_not_in(held.to_vec()));
        if dry_run {
            return Ok((
                expired().filter(not_held).count(&self.db).await?,
                held_count,
            ));
        }
        let purged = crash::Entity::delete_many()
            .filter(crash::Column::OccurredAt.lt(cutoff))
            .filter(not_held)
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok((purged, held_count))
    }

    /// Daily counts of one dimension between two days (inclusive).
    pub async fn aggregates(
        &self,
        dimension: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<aggregate::Model>> {
        Ok(aggregate::Entity::find()
            .filter(aggregate::Column::Dimension.eq(dimension))
            .filter(aggregate::Column::Day.gte(from))
            .filter(aggregate::Column::Day.lte(to))
            .order_by_asc(aggregate::Column::Day)
            .order_by_asc(aggregate::Column::Value)
            .all(&self.db)
            .await?)
    }
}
