//! Persistence: the append-only ledger and the region cache.

pub mod entities;
mod links;

pub use links::Link;

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::ErasureReceipt;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{Channel, LedgerEntryKind, Source},
};
use pdm_runtime::{
    SubjectId,
    erasure::{Pseudonymised, Receipts},
};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, OnConflict},
};

use crate::error::Result;
use entities::{consent_event, subject};

pub use consent_event::Model as Row;

/// A ledger entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Subject id.
    pub subject_id: SubjectId,
    /// What happened.
    pub kind: LedgerEntryKind,
    /// Purpose key.
    pub purpose: Option<String>,
    /// Channel.
    pub channel: Option<Channel>,
    /// How it reached us.
    pub source: Source,
    /// Policy version shown.
    pub policy_version: Option<String>,
    /// SHA-256 of the text shown.
    pub text_hash: Option<String>,
    /// Who recorded it.
    pub actor: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// The consent database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The erasure receipts (`erasures`).
    pub fn receipts(&self) -> pdm_runtime::erasure::Receipts {
        pdm_runtime::erasure::Receipts::new(self.db.clone())
    }

    /// The connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Appends entries in one transaction and returns them with their sequence numbers.
    /// On PostgreSQL the ledger is locked against other writers for the transaction, so
    /// sequence order is commit order and a reader following the ledger by sequence never
    /// skips an entry that commits late.
    pub async fn append(&self, entries: Vec<NewEntry>, now: DateTime<Utc>) -> Result<Vec<Row>> {
        let txn = self.begin_ledger_write().await?;
        let rows = insert_entries(&txn, entries, now).await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// Uses up the unsubscribe link `link_id` and appends its entries, in one transaction:
    /// a link is never spent without its opt-out stored (apart, a stop between the two
    /// left the link used and the person still subscribed, every later click answered
    /// "already used"). None, with nothing stored, when another click used the link first.
    pub async fn append_using_link(
        &self,
        link_id: &str,
        entries: Vec<NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Row>>> {
        let txn = self.begin_ledger_write().await?;
        if !links::use_link(&txn, link_id, now).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let rows = insert_entries(&txn, entries, now).await?;
        txn.commit().await?;
        Ok(Some(rows))
    }

    /// A write transaction holding the ledger (see [`Store::append`]).
    async fn begin_ledger_write(&self) -> Result<sea_orm::DatabaseTransaction> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_unprepared("LOCK TABLE consent_events IN EXCLUSIVE MODE")
                .await?;
        }
        Ok(txn)
    }

    /// Every entry of the subject (and of its erased pseudonym), oldest first.
    pub async fn ledger_of(&self, subject: &SubjectId, pseudonym: &str) -> Result<Vec<Row>> {
        let subject = subject.to_string();
        Ok(consent_event::Entity::find()
            .filter(consent_event::Column::SubjectId.is_in([subject.as_str(), pseudonym]))
            .order_by_asc(consent_event::Column::Seq)
            .all(&self.db)
            .await?)
    }

    /// A page of the subject's entries after `after`.
    pub async fn history(&self, subject: &SubjectId, after: i64, limit: u64) -> Result<Vec<Row>> {
        Ok(consent_event::Entity::find()
            .filter(consent_event::Column::SubjectId.eq(subject.to_string()))
            .filter(consent_event::Column::Seq.gt(after))
            .order_by_asc(consent_event::Column::Seq)
            // SQL limits are signed 64-bit: `u64::MAX` ("all of them") must not overflow.
            .limit(limit.min(i64::MAX.unsigned_abs()))
            .all(&self.db)
            .await?)
    }

    /// Entries of any subject after `after`, oldest first.
    pub async fn after(&self, after: i64, limit: u64) -> Result<Vec<Row>> {
        Ok(consent_event::Entity::find()
            .filter(consent_event::Column::Seq.gt(after))
            .order_by_asc(consent_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The highest sequence number in the ledger.
    pub async fn max_seq(&self) -> Result<i64> {
        let max: Option<Option<i64>> = consent_event::Entity::find()
            .select_only()
            .column_as(consent_event::Column::Seq.max(), "max")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(max.flatten().unwrap_or(0))
    }

    /// The subject's region as last learned from identity.
    pub async fn region(&self, subject: &SubjectId) -> Result<Option<(Region, DateTime<Utc>)>> {
        let row = subject::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?;
        Ok(row.map(|r| {
            (
                Region::from_str_name(&r.region).unwrap_or(Region::Other),
                r.checked_at,
            )
        }))
    }

    /// Remembers a region learned from identity.
    pub async fn save_region(
        &self,
        subject: &SubjectId,
        region: Region,
        now: DateTime<Utc>,
    ) -> Result<()> {
        subject::Entity::insert(subject::ActiveModel {
            subject_id: Set(subject.to_string()),
            region: Set(region.as_str_name().to_owned()),
            checked_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(subject::Column::SubjectId)
                .update_columns([subject::Column::Region, subject::Column::CheckedAt])
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Erasure: the subject's entries keep their purpose, times, policy version and text
    /// hash but lose the subject id (replaced by `pseudonym`) and the actor; an ERASED entry
    /// is appended; the region and the subject's unsubscribe links are forgotten. The
    /// receipt `receipt_of` writes from what was done is stored in the same transaction
    /// (apart, a stop between the two left the retry's receipt counting nothing erased).
    /// None, with nothing changed, when an erasure under the receipt's request id finished
    /// first (the caller answers with its receipt).
    pub async fn erase(
        &self,
        subject: &SubjectId,
        pseudonym: &str,
        now: DateTime<Utc>,
        receipt_of: impl FnOnce(Pseudonymised) -> ErasureReceipt,
    ) -> Result<Option<ErasureReceipt>> {
        let subject = subject.to_string();
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_unprepared("LOCK TABLE consent_events IN EXCLUSIVE MODE")
                .await?;
        }
        let updated = consent_event::Entity::update_many()
            .col_expr(consent_event::Column::SubjectId, Expr::value(pseudonym))
            .col_expr(
                consent_event::Column::Actor,
                Expr::value(Option::<String>::None),
            )
            .filter(consent_event::Column::SubjectId.eq(subject.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        let already = consent_event::Entity::find()
            .filter(consent_event::Column::SubjectId.eq(pseudonym))
            .filter(consent_event::Column::Kind.eq(LedgerEntryKind::Erased.as_str_name()))
            .count(&txn)
            .await?;
        if already == 0 {
            consent_event::Entity::insert(consent_event::ActiveModel {
                seq: NotSet,
                subject_id: Set(pseudonym.to_owned()),
                kind: Set(LedgerEntryKind::Erased.as_str_name().to_owned()),
                purpose: Set(None),
                channel: Set(None),
                source: Set(Source::PrivacyRequest.as_str_name().to_owned()),
                policy_version: Set(None),
                text_hash: Set(None),
                actor: Set(None),
                occurred_at: Set(now),
                recorded_at: Set(now),
            })
            .exec(&txn)
            .await?;
        }
        subject::Entity::delete_by_id(subject.clone())
            .exec(&txn)
            .await?;
        // Links in messages already sent stop working: there is no one left to opt out.
        entities::unsubscribe_link::Entity::delete_many()
            .filter(entities::unsubscribe_link::Column::SubjectId.eq(subject.as_str()))
            .exec(&txn)
            .await?;
        let kept = consent_event::Entity::find()
            .filter(consent_event::Column::SubjectId.eq(pseudonym))
            .count(&txn)
            .await?;
        let receipt = receipt_of(Pseudonymised {
            entries: updated,
            kept,
        });
        Ok(Receipts::commit_with(txn, pseudonym, receipt, now).await?)
    }

    /// Pseudonymised entries of subjects erased before `cutoff` (the retention period of
    /// the proof counts from the erasure, not from when each entry was recorded), excluding
    /// the pseudonyms in `held`: `(purged, held)`. Nothing is deleted on a dry run.
    pub async fn purge_proof(
        &self,
        cutoff: DateTime<Utc>,
        held: &[String],
        dry_run: bool,
    ) -> Result<(u64, u64)> {
        let erased_before = consent_event::Entity::find()
            .select_only()
            .column(consent_event::Column::SubjectId)
            .filter(consent_event::Column::Kind.eq(LedgerEntryKind::Erased.as_str_name()))
            .filter(consent_event::Column::RecordedAt.lt(cutoff))
            .into_query();
        let expired = consent_event::Entity::find()
            .filter(consent_event::Column::SubjectId.starts_with(crate::ERASED_PREFIX))
            .filter(consent_event::Column::SubjectId.in_subquery(erased_before.clone()));
        let held_count = if held.is_empty() {
            0
        } else {
            expired
                .clone()
                .filter(consent_event::Column::SubjectId.is_in(held.to_vec()))
                .count(&self.db)
                .await?
        };
        let purgeable = expired.filter(consent_event::Column::SubjectId.is_not_in(held.to_vec()));
        if dry_run {
            return Ok((purgeable.count(&self.db).await?, held_count));
        }
        let purged = consent_event::Entity::delete_many()
            .filter(consent_event::Column::SubjectId.starts_with(crate::ERASED_PREFIX))
            .filter(consent_event::Column::SubjectId.in_subquery(erased_before))
            .filter(consent_event::Column::SubjectId.is_not_in(held.to_vec()))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok((purged, held_count))
    }
}

/// Inserts `entries` in the caller's transaction, answering them with their sequence
/// numbers.
async fn insert_entries<C: ConnectionTrait>(
    conn: &C,
    entries: Vec<NewEntry>,
    now: DateTime<Utc>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        let row = consent_event::ActiveModel {
            seq: NotSet,
            subject_id: Set(e.subject_id.to_string()),
            kind: Set(e.kind.as_str_name().to_owned()),
            purpose: Set(e.purpose),
            channel: Set(e.channel.map(|c| c.as_str_name().to_owned())),
            source: Set(e.source.as_str_name().to_owned()),
            policy_version: Set(e.policy_version),
            text_hash: Set(e.text_hash),
            actor: Set(e.actor),
            occurred_at: Set(e.occurred_at),
            recorded_at: Set(now),
        };
        rows.push(
            consent_event::Entity::insert(row)
                .exec_with_returning(conn)
                .await?,
        );
    }
    Ok(rows)
}
