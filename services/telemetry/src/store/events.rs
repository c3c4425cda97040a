//! Writing, reading, deleting and purging events.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use pdm_runtime::SubjectId;
use sea_orm::{ConnectionTrait, Statement, StreamTrait, Value, sqlx};
use tokio_stream::{Stream, StreamExt};

use super::{Deltas, Store, binary_copy::BinaryCopy, day_start};
use crate::error::{Result, TelemetryError};

/// An event ready to store.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Subject, if any.
    pub subject_id: Option<String>,
    /// Kind name.
    pub kind: &'static str,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Keyed hash of the interaction peer.
    pub peer_hash: Option<Vec<u8>>,
    /// JSON details, sealed with the subject's key when there is a subject.
    pub payload: Vec<u8>,
    /// Whether `payload` is sealed.
    pub sealed: bool,
}

/// An event read back.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Row id.
    pub event_id: i64,
    /// Kind name.
    pub kind: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Payload as stored.
    pub payload: Vec<u8>,
    /// Whether it is sealed.
    pub sealed: bool,
}

const COLUMNS: &str =
    "subject_id, kind, occurred_at, received_at, batch_id, peer_hash, payload, sealed";
/// The number of [`COLUMNS`].
const COLUMN_COUNT: i16 = 8;

/// The subjects whose keys seal some of `rows`.
fn sealed_subjects(rows: &[EventRow]) -> Vec<String> {
    super::subjects::distinct_subjects(
        rows.iter()
            .filter(|r| r.sealed)
            .filter_map(|r| r.subject_id.as_deref()),
    )
}

impl Store {
    /// Stores a batch: its answer, its events and their aggregate counts, in one
    /// transaction. Returns the stored answer of an earlier batch with the same id instead,
    /// storing nothing. Fails with [`TelemetryError::ErasedMeanwhile`], storing nothing,
    /// when a subject of the batch was erased after it was judged.
    pub async fn write_batch(
        &self,
        batch_id: &str,
        response: &str,
        rows: &[EventRow],
        (deltas, k): (&Deltas, u32),
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        if self.postgres() {
            self.write_batch_postgres(batch_id, response, rows, (deltas, k), now)
                .await
        } else {
            self.write_batch_sqlite(batch_id, response, rows, (deltas, k), now)
                .await
        }
    }

    async fn write_batch_postgres(
        &self,
        batch_id: &str,
        response: &str,
        rows: &[EventRow],
        (deltas, k): (&Deltas, u32),
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let days: BTreeSet<NaiveDate> = rows.iter().map(|r| r.occurred_at.date_naive()).collect();
        self.ensure_partitions(&days).await?;
        let pool = self.db.get_postgres_connection_pool();
        let mut tx = pool.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO batches (batch_id, response, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(batch_id)
        .bind(response)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh == 0 {
            tx.rollback().await?;
            return self.stored_response(batch_id).await;
        }
        let erased = self
            .erased_among_postgres(&mut tx, &sealed_subjects(rows))
            .await?;
        if !erased.is_empty() {
            tx.rollback().await?;
            return Err(TelemetryError::ErasedMeanwhile(erased));
        }
        if !rows.is_empty() {
            // Sized once: a row is its payload and a few short values.
            let mut data = BinaryCopy::with_capacity(
                rows.iter()
                    .map(|r| r.payload.len() + 160 + batch_id.len())
                    .sum(),
            );
            for r in rows {
                data.row(COLUMN_COUNT);
                data.text(r.subject_id.as_deref());
                data.text(Some(r.kind));
                data.timestamp(r.occurred_at);
                data.timestamp(now);
                data.text(Some(batch_id));
                data.bytes(r.peer_hash.as_deref());
                data.bytes(Some(&r.payload));
                data.boolean(r.sealed);
            }
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY events ({COLUMNS}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            copy.send(data.finish()).await?;
            copy.finish().await?;
        }
        Self::add_aggregates_postgres(&mut tx, deltas, k).await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn write_batch_sqlite(
        &self,
        batch_id: &str,
        response: &str,
        rows: &[EventRow],
        (deltas, k): (&Deltas, u32),
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let backend = self.db.get_database_backend();
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let fresh = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO batches (batch_id, response, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [batch_id.into(), response.into(), now.into()],
            ))
            .await?
            .rows_affected();
        if fresh == 0 {
            txn.rollback().await?;
            return self.stored_response(batch_id).await;
        }
        // The batch row above took SQLite's write lock: erasures wait or are done.
        let erased = self.erased_among(&txn, &sealed_subjects(rows)).await?;
        if !erased.is_empty() {
            txn.rollback().await?;
            return Err(TelemetryError::ErasedMeanwhile(erased));
        }
        for chunk in rows.chunks(100) {
            let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 8);
            for r in chunk {
                values.push(r.subject_id.clone().into());
                values.push(r.kind.into());
                values.push(r.occurred_at.into());
                values.push(now.into());
                values.push(batch_id.into());
                values.push(r.peer_hash.clone().into());
                values.push(r.payload.clone().into());
                values.push(r.sealed.into());
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("INSERT INTO events ({COLUMNS}) VALUES {placeholders}"),
                values,
            ))
            .await?;
        }
        Self::add_aggregates_sqlite(&txn, deltas, k).await?;
        txn.commit().await?;
        Ok(None)
    }

    /// The stored answer of a batch.
    pub async fn stored_response(&self, batch_id: &str) -> Result<Option<String>> {
        use sea_orm::EntityTrait;
        let row = super::entities::batch::Entity::find_by_id(batch_id.to_owned())
            .one(&self.db)
            .await?;
        row.map(|r| r.response)
            .map(Some)
            .ok_or(TelemetryError::Internal("batch answer vanished"))
    }

    /// The stored answer of a batch, if it was processed before.
    pub async fn stored_response_if_any(&self, batch_id: &str) -> Result<Option<String>> {
        use sea_orm::EntityTrait;
        Ok(
            super::entities::batch::Entity::find_by_id(batch_id.to_owned())
                .one(&self.db)
                .await?
                .map(|r| r.response),
        )
    }

    /// Creates the day partitions a batch needs (PostgreSQL).
    async fn ensure_partitions(&self, days: &BTreeSet<NaiveDate>) -> Result<()> {
        let missing: Vec<NaiveDate> = {
            let known = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            days.iter()
                .filter(|d| !known.contains(d))
                .copied()
                .collect()
        };
        for day in missing {
            let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS events_p{} PARTITION OF events FOR VALUES FROM ('{}') TO ('{}')",
                day.format("%Y%m%d"),
                day_start(day).to_rfc3339(),
                day_start(next).to_rfc3339(),
            );
            if let Err(err) = self.db.execute_unprepared(&sql).await {
                // Two batches may race to create the same partition: fine if it now exists.
                if !self.partition_exists(day).await? {
                    return Err(err.into());
                }
            }
            self.partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(day);
        }
        Ok(())
    }

    async fn partition_exists(&self, day: NaiveDate) -> Result<bool> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT 1 AS one FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = $1 AND n.nspname = current_schema()",
                [format!("events_p{}", day.format("%Y%m%d")).into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    /// The subject's events in id order, read by one query as the consumer takes them.
    /// Pages (`event_id > last LIMIT n`) looked cheaper but are not: while the planner's
    /// statistics lag behind a large load, PostgreSQL answers each page with a bitmap scan
    /// and a sort of every remaining row (measured: 100 pages of a fresh 100,000-event
    /// subject, 14 s; this one query, under 1 s). Holds one pooled connection until the
    /// stream is dropped (reaching its end is not enough).
    pub async fn stream_events_of(
        &self,
        subject: &SubjectId,
    ) -> Result<impl Stream<Item = Result<StoredEvent>> + Send + use<>> {
        let sql = if self.postgres() {
            "SELECT event_id, kind, occurred_at, payload, sealed FROM events \
             WHERE subject_id = $1 ORDER BY event_id"
        } else {
            "SELECT event_id, kind, occurred_at, payload, sealed FROM events \
             WHERE subject_id = ? ORDER BY event_id"
        };
        let rows = self
            .db
            .stream_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [subject.to_string().into()],
            ))
            .await?;
        Ok(rows.map(|row| {
            let r = row?;
            Ok(StoredEvent {
                event_id: r.try_get("", "event_id")?,
                kind: r.try_get("", "kind")?,
                occurred_at: r.try_get("", "occurred_at")?,
                payload: r.try_get("", "payload")?,
                sealed: r.try_get("", "sealed")?,
            })
        }))
    }

    /// Deletes the rows of an erased subject, and interactions naming it as the peer.
    pub async fn delete_subject_events(&self, subject: &str) -> Result<u64> {
        let backend = self.db.get_database_backend();
        let p = |i: usize| {
            if self.postgres() {
                format!("${i}")
            } else {
                "?".to_owned()
            }
        };
        let own = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM events WHERE subject_id = {}", p(1)),
                [subject.into()],
            ))
            .await?
            .rows_affected();
        let as_peer = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM events WHERE peer_hash = {}", p(1)),
                [self.subject_hash(subject).into()],
            ))
            .await?
            .rows_affected();
        Ok(own + as_peer)
    }

    /// Purges events that occurred before `cutoff`, sparing `held` subjects. On
    /// PostgreSQL, whole day partitions before the cutoff are dropped when no held subject
    /// has rows in them; what remains is deleted row by row. Returns `(purged, held)`.
    pub async fn purge_events(
        &self,
        cutoff: DateTime<Utc>,
        held: &[String],
        dry_run: bool,
    ) -> Result<(u64, u64)> {
        let held_count = self.count_events(cutoff, Some(held), true).await?;
        if dry_run {
            return Ok((
                self.count_events(cutoff, Some(held), false).await?,
                held_count,
            ));
        }
        let mut purged = 0;
        if self.postgres() {
            for (name, day) in self.partitions_before(cutoff).await? {
                if !held.is_empty() && self.partition_holds_any(&name, held).await? {
                    continue;
                }
                purged += self.count_table(&name).await?;
                self.db
                    .execute_unprepared(&format!("DROP TABLE IF EXISTS \"{name}\""))
                    .await?;
                self.partitions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&day);
            }
        }
        purged += self.delete_before(cutoff, held).await?;
        Ok((purged, held_count))
    }

    async fn partitions_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(String, NaiveDate)>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT c.relname::text AS name FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
                 JOIN pg_namespace n ON n.oid = p.relnamespace \
                 WHERE p.relname = 'events' AND n.nspname = current_schema()",
            ))
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get("", "name")?;
            let Some(day) = name
                .strip_prefix("events_p")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            else {
                continue;
            };
            let end = day_start(day.checked_add_days(Days::new(1)).unwrap_or(day));
            if end <= cutoff {
                out.push((name, day));
            }
        }
        Ok(out)
    }

    async fn partition_holds_any(&self, table: &str, held: &[String]) -> Result<bool> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                format!("SELECT 1 AS one FROM \"{table}\" WHERE subject_id = ANY($1) LIMIT 1"),
                [held.to_vec().into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    async fn count_table(&self, table: &str) -> Result<u64> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM \"{table}\""),
            ))
            .await?;
        let n: i64 = row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn held_clause(
        &self,
        held: &[String],
        first_param: usize,
        negate: bool,
    ) -> (String, Vec<Value>) {
        if held.is_empty() {
            return (
                if negate {
                    String::new()
                } else {
                    " AND FALSE".to_owned()
                },
                Vec::new(),
            );
        }
        let marks: Vec<String> = (0..held.len())
            .map(|i| {
                if self.postgres() {
                    format!("${}", first_param + i)
                } else {
                    "?".to_owned()
                }
            })
            .collect();
        let op = if negate { "NOT IN" } else { "IN" };
        let clause = if negate {
            format!(
                " AND (subject_id IS NULL OR subject_id {op} ({}))",
                marks.join(", ")
            )
        } else {
            format!(" AND subject_id {op} ({})", marks.join(", "))
        };
        (clause, held.iter().map(|h| h.clone().into()).collect())
    }

    async fn count_events(
        &self,
        cutoff: DateTime<Utc>,
        held: Option<&[String]>,
        only_held: bool,
    ) -> Result<u64> {
        let held = held.unwrap_or_default();
        let (clause, mut values) = self.held_clause(held, 2, !only_held);
        let mark = if self.postgres() { "$1" } else { "?" };
        values.insert(0, cutoff.into());
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM events WHERE occurred_at < {mark}{clause}"),
                values,
            ))
            .await?;
        let n: i64 = row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_before(&self, cutoff: DateTime<Utc>, held: &[String]) -> Result<u64> {
        let (clause, mut values) = self.held_clause(held, 2, true);
        let mark = if self.postgres() { "$1" } else { "?" };
        values.insert(0, cutoff.into());
        Ok(self
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                format!("DELETE FROM events WHERE occurred_at < {mark}{clause}"),
                values,
            ))
            .await?
            .rows_affected())
    }
}
