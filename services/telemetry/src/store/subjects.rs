//! Per-subject state: suppression after erasure, restriction, the background erasure
//! queue; crash reports and aggregates.

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::ErasureReceipt;
use pdm_runtime::{
    SubjectId,
    erasure::{self, Receipts},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Statement, sqlx,
};

use super::{
    Store,
    entities::{aggregate, crash, erasure_queue, restriction, suppression},
};
use crate::error::{Result, TelemetryError};

/// What erasing a subject did at once, for its receipt.
#[derive(Debug, Clone, Copy)]
pub struct Erased {
    /// Whether the subject's key was there to destroy.
    pub key_destroyed: bool,
    /// Crash reports deleted.
    pub crashes: u64,
}

/// Advisory-lock class of the erasure fences (the two-key form keeps them apart from
/// single-key advisory locks other services may take in a shared database).
const ERASURE_FENCE: i32 = 0x7465_6c65;

/// Takes the erasure fences `$2` (sorted) of class `$1`, shared, until the transaction ends.
const SHARED_FENCES: &str =
    "SELECT pg_advisory_xact_lock_shared($1, f) FROM unnest($2::int4[]) AS f";

fn erased_of(subjects: &[String], hashes: &[Vec<u8>], found: &[Vec<u8>]) -> Vec<String> {
    subjects
        .iter()
        .zip(hashes)
        .filter(|(_, h)| found.contains(h))
        .map(|(s, _)| s.clone())
        .collect()
}

/// Distinct subjects, sorted (so concurrent writers lock their keys in one order).
pub fn distinct_subjects<'a>(subjects: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut all: Vec<String> = subjects.map(str::to_owned).collect();
    all.sort_unstable();
    all.dedup();
    all
}

impl Store {
    /// Which of `subjects` are erased, as seen by the write transaction `txn` that is
    /// about to store data sealed with their keys. On PostgreSQL the transaction first
    /// takes each subject's erasure fence, shared: an erasure that has not begun waits for
    /// this transaction (so its background deletion sees what this one stores), one under
    /// way is waited for, and one that is done is seen by the check. SQLite write
    /// transactions already exclude each other (call this after the first write). Without
    /// this a write racing an erasure could outlive it, under a key created again.
    pub async fn erased_among<C: ConnectionTrait>(
        &self,
        txn: &C,
        subjects: &[String],
    ) -> Result<Vec<String>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        if self.postgres() {
            txn.execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                SHARED_FENCES,
                [ERASURE_FENCE.into(), self.fences(subjects).into()],
            ))
            .await?;
        }
        let hashes: Vec<Vec<u8>> = subjects.iter().map(|s| self.subject_hash(s)).collect();
        let mut found = Vec::new();
        for chunk in hashes.chunks(500) {
            found.extend(
                suppression::Entity::find()
                    .filter(suppression::Column::SubjectHash.is_in(chunk.to_vec()))
                    .all(txn)
                    .await?
                    .into_iter()
                    .map(|s| s.subject_hash),
            );
        }
        Ok(erased_of(subjects, &hashes, &found))
    }

    /// [`Store::erased_among`] inside a PostgreSQL transaction driven through sqlx (the
    /// COPY path).
    pub async fn erased_among_postgres(
        &self,
        tx: &mut sqlx::PgConnection,
        subjects: &[String],
    ) -> Result<Vec<String>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query(SHARED_FENCES)
            .bind(ERASURE_FENCE)
            .bind(self.fences(subjects))
            .execute(&mut *tx)
            .await?;
        // A statement of its own: its snapshot is taken once the fences are held.
        let hashes: Vec<Vec<u8>> = subjects.iter().map(|s| self.subject_hash(s)).collect();
        let found: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT subject_hash FROM suppressions WHERE subject_hash = ANY($1)",
        )
        .bind(&hashes)
        .fetch_all(&mut *tx)
        .await?;
        Ok(erased_of(subjects, &hashes, &found))
    }

    /// The erasure fences of `subjects`, sorted (so concurrent writers take them in one
    /// order) and distinct.
    fn fences(&self, subjects: &[String]) -> Vec<i32> {
        let mut fences: Vec<i32> = subjects.iter().map(|s| self.fence(s)).collect();
        fences.sort_unstable();
        fences.dedup();
        fences
    }

    /// A subject's erasure fence: an advisory-lock key from its keyed hash (a collision
    /// only makes two subjects' writes and erasures wait for each other).
    fn fence(&self, subject: &str) -> i32 {
        let mut key = [0u8; 4];
        for (k, h) in key.iter_mut().zip(self.subject_hash(subject)) {
            *k = h;
        }
        i32::from_be_bytes(key)
    }

    /// Keyed hashes of every erased subject (loaded at start).
    pub async fn suppressed(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self.suppressed_since(None).await?.0)
    }

    /// Keyed hashes of the subjects erased at or after `since` (every one without it),
    /// and the latest erasure time among them: what the suppression list gained since a
    /// replica last looked (an index on the time keeps it from reading the whole list).
    pub async fn suppressed_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Vec<u8>>, Option<DateTime<Utc>>)> {
        let mut query = suppression::Entity::find();
        if let Some(since) = since {
            query = query.filter(suppression::Column::ErasedAt.gte(since));
        }
        let rows = query.all(&self.db).await?;
        let latest = rows.iter().map(|s| s.erased_at).max();
        Ok((rows.into_iter().map(|s| s.subject_hash).collect(), latest))
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
        subject: &SubjectId,
        restricted: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if restricted {
            restriction::Entity::insert(restriction::ActiveModel {
                subject_id: Set(subject.to_string()),
                restricted_at: Set(now),
            })
            .on_conflict_do_nothing()
            .exec(&self.db)
            .await?;
        } else {
            restriction::Entity::delete_by_id(subject.to_string())
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Erasure, the part that must be immediate: the subject joins the suppression list and
    /// the background deletion queue, crash reports go, their hash leaves the sets of
    /// aggregate buckets still short of k people, and the key goes (every sealed row
    /// becomes unreadable at once). Constant time whatever the number of events.
    ///
    /// The receipt `receipt_of` writes from what is done is stored in the same transaction
    /// as the rest (apart, a stop between the two left the retry's receipt saying no key
    /// was destroyed and no crash report deleted). The key store is another database: the
    /// key goes once that transaction has committed, and a retry of the same request
    /// destroys it if a stop came in between ([`Store::destroy_key`]). None when an erasure
    /// under the receipt's request id finished first (the caller answers with its receipt).
    pub async fn erase_now(
        &self,
        subject: &SubjectId,
        now: DateTime<Utc>,
        receipt_of: impl FnOnce(Erased) -> ErasureReceipt,
    ) -> Result<Option<ErasureReceipt>> {
        let subject = subject.to_string();
        let subject = subject.as_str();
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        if self.postgres() {
            // Waits for writes already holding the subject's fence; later ones wait for
            // this transaction and then see the suppression (see `erased_among`).
            txn.execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                "SELECT pg_advisory_xact_lock($1, $2)",
                [ERASURE_FENCE.into(), self.fence(subject).into()],
            ))
            .await?;
        }
        let key_held = self.keys.exists(subject).await?;
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
        // Buckets still short of k forget them; published ones keep their count.
        self.forget_person(&txn, subject).await?;
        let receipt = receipt_of(Erased {
            key_destroyed: key_held,
            crashes,
        });
        let subject_ref = erasure::hex_ref(&self.subject_hash(subject));
        let stored = Receipts::commit_with(txn, &subject_ref, receipt, now).await?;
        self.destroy_key(subject).await?;
        Ok(stored)
    }

    /// Destroys the subject's key, if it still has one: an erasure's last step, taken again
    /// by its retry (a stop between the erasure's commit and this left the key behind).
    pub async fn destroy_key(&self, subject: &str) -> Result<()> {
        self.keys.destroy(subject).await?;
        Ok(())
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

    /// Stores a crash report; refuses (storing nothing) if its subject was erased
    /// meanwhile.
    pub async fn insert_crash(&self, row: crash::Model) -> Result<()> {
        let subjects: Vec<String> = row.subject_id.iter().cloned().collect();
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        // Written first: on SQLite the write lock is taken before the check.
        crash::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .exec(&txn)
            .await?;
        let erased = self.erased_among(&txn, &subjects).await?;
        if !erased.is_empty() {
            txn.rollback().await?;
            return Err(TelemetryError::ErasedMeanwhile(erased));
        }
        txn.commit().await?;
        Ok(())
    }

    /// The subject's crash reports.
    pub async fn crashes_of(&self, subject: &SubjectId) -> Result<Vec<crash::Model>> {
        Ok(crash::Entity::find()
            .filter(crash::Column::SubjectId.eq(subject.to_string()))
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
