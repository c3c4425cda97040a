//! Aggregates counted in distinct people: each bucket's event count, and the set of keyed
//! hashes of the people behind it, kept only until k is reached (see `domain::aggregate`).
//! Both change in the batch's transaction, after the bucket's row is locked by its upsert,
//! so concurrent batches count a bucket's people one after the other.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, Statement, Value, sqlx};

use super::Store;
use crate::{domain::aggregate::people_after_recount, error::Result};

/// A bucket: `(day, dimension, value)`.
pub type BucketKey = (String, &'static str, String);

/// What a batch adds to one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketDelta {
    /// Events.
    pub events: i64,
    /// Keyed hashes of the people behind them (see [`Store::person_of_subject`]).
    pub people: BTreeSet<Vec<u8>>,
}

/// Aggregate increments of a batch, sorted (so concurrent batches lock buckets in one
/// order).
pub type Deltas = BTreeMap<BucketKey, BucketDelta>;

impl Store {
    /// The keyed hash that counts a logged-in subject in a bucket's people.
    pub fn person_of_subject(&self, subject: &str) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute("telemetry-person-subject", subject)
    }

    /// The keyed hash that counts a logged-out device in a bucket's people.
    pub fn person_of_device(&self, device: &str) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute("telemetry-person-device", device)
    }

    /// Adds a batch's deltas inside its PostgreSQL transaction.
    pub(super) async fn add_aggregates_postgres(
        tx: &mut sqlx::PgConnection,
        deltas: &Deltas,
        k: u32,
    ) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let (mut day, mut dim, mut value, mut count) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((d, m, v), delta) in deltas {
            day.push(d.clone());
            dim.push((*m).to_owned());
            value.push(v.clone());
            count.push(delta.events);
        }
        // The upsert locks each bucket's row until commit: what follows sees the people
        // counted by every batch committed before.
        let counted: Vec<(String, String, String, i64)> = sqlx::query_as(
            "INSERT INTO aggregates (day, dimension, value, count, people) \
             SELECT d, m, v, c, 0 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(d, m, v, c) \
             ON CONFLICT (day, dimension, value) DO UPDATE SET count = aggregates.count + EXCLUDED.count \
             RETURNING day, dimension, value, people",
        )
        .bind(&day)
        .bind(&dim)
        .bind(&value)
        .bind(&count)
        .fetch_all(&mut *tx)
        .await?;
        let index: HashMap<(&str, &str, &str), &BucketDelta> = deltas
            .iter()
            .map(|((d, m, v), delta)| ((d.as_str(), *m, v.as_str()), delta))
            .collect();
        let (mut pd, mut pm, mut pv, mut pp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut sd, mut sm, mut sv) = (Vec::new(), Vec::new(), Vec::new());
        for (d, m, v, people) in counted {
            if u64::try_from(people).unwrap_or(0) >= u64::from(k) {
                continue;
            }
            let Some(delta) = index.get(&(d.as_str(), m.as_str(), v.as_str())) else {
                continue;
            };
            if delta.people.is_empty() {
                continue;
            }
            for person in &delta.people {
                pd.push(d.clone());
                pm.push(m.clone());
                pv.push(v.clone());
                pp.push(person.clone());
            }
            sd.push(d);
            sm.push(m);
            sv.push(v);
        }
        if sd.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO aggregate_people (day, dimension, value, person) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&pd)
        .bind(&pm)
        .bind(&pv)
        .bind(&pp)
        .execute(&mut *tx)
        .await?;
        let k = i64::from(k);
        sqlx::query(
            "UPDATE aggregates a SET people = LEAST(c.n, $4) FROM ( \
               SELECT p.day, p.dimension, p.value, COUNT(*) AS n FROM aggregate_people p \
               JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS t(d, m, v) \
                 ON p.day = t.d AND p.dimension = t.m AND p.value = t.v \
               GROUP BY p.day, p.dimension, p.value) c \
             WHERE a.day = c.day AND a.dimension = c.dimension AND a.value = c.value",
        )
        .bind(&sd)
        .bind(&sm)
        .bind(&sv)
        .bind(k)
        .execute(&mut *tx)
        .await?;
        // A bucket that reached k keeps no one's hash: it is published for good.
        sqlx::query(
            "DELETE FROM aggregate_people p USING aggregates a, \
               UNNEST($1::text[], $2::text[], $3::text[]) AS t(d, m, v) \
             WHERE p.day = t.d AND p.dimension = t.m AND p.value = t.v \
               AND a.day = t.d AND a.dimension = t.m AND a.value = t.v AND a.people >= $4",
        )
        .bind(&sd)
        .bind(&sm)
        .bind(&sv)
        .bind(k)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Adds a batch's deltas inside its SQLite transaction (which holds the write lock).
    pub(super) async fn add_aggregates_sqlite<C: ConnectionTrait>(
        txn: &C,
        deltas: &Deltas,
        k: u32,
    ) -> Result<()> {
        let backend = txn.get_database_backend();
        let all: Vec<_> = deltas.iter().collect();
        for chunk in all.chunks(200) {
            let placeholders = vec!["(?, ?, ?, ?, 0)"; chunk.len()].join(", ");
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
            for ((d, m, v), delta) in chunk {
                values.push(d.clone().into());
                values.push((*m).into());
                values.push(v.clone().into());
                values.push(delta.events.into());
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO aggregates (day, dimension, value, count, people) VALUES {placeholders} \
                     ON CONFLICT (day, dimension, value) DO UPDATE SET count = aggregates.count + excluded.count"
                ),
                values,
            ))
            .await?;
        }
        const KEY: &str = "day = ? AND dimension = ? AND value = ?";
        for ((d, m, v), delta) in deltas {
            if delta.people.is_empty() {
                continue;
            }
            let key = || -> Vec<Value> { vec![d.clone().into(), (*m).into(), v.clone().into()] };
            let people: i64 = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!("SELECT people FROM aggregates WHERE {KEY}"),
                    key(),
                ))
                .await?
                .map(|r| r.try_get("", "people"))
                .transpose()?
                .unwrap_or(0);
            if u64::try_from(people).unwrap_or(0) >= u64::from(k) {
                continue;
            }
            let persons: Vec<&Vec<u8>> = delta.people.iter().collect();
            for chunk in persons.chunks(200) {
                let placeholders = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
                for person in chunk {
                    values.extend(key());
                    values.push((*person).clone().into());
                }
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "INSERT INTO aggregate_people (day, dimension, value, person) VALUES {placeholders} \
                         ON CONFLICT DO NOTHING"
                    ),
                    values,
                ))
                .await?;
            }
            let distinct: i64 = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!("SELECT COUNT(*) AS n FROM aggregate_people WHERE {KEY}"),
                    key(),
                ))
                .await?
                .map(|r| r.try_get("", "n"))
                .transpose()?
                .unwrap_or(0);
            let people = people_after_recount(u64::try_from(distinct).unwrap_or(0), k);
            let mut values = vec![i64::try_from(people).unwrap_or(i64::MAX).into()];
            values.extend(key());
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("UPDATE aggregates SET people = ? WHERE {KEY}"),
                values,
            ))
            .await?;
            if people >= u64::from(k) {
                // Published for good: nobody's hash stays.
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!("DELETE FROM aggregate_people WHERE {KEY}"),
                    key(),
                ))
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes the buckets of days before `cutoff` (YYYY-MM-DD) still short of `k`
    /// people, and every set of people of those days. Returns the buckets deleted.
    pub async fn purge_small_buckets(&self, cutoff: &str, k: u32) -> Result<u64> {
        let backend = self.db.get_database_backend();
        let (p1, p2) = if self.postgres() {
            ("$1", "$2")
        } else {
            ("?", "?")
        };
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM aggregate_people WHERE day < {p1}"),
                [cutoff.into()],
            ))
            .await?;
        Ok(self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM aggregates WHERE day < {p1} AND people < {p2}"),
                [cutoff.into(), i64::from(k).into()],
            ))
            .await?
            .rows_affected())
    }

    /// Deletes the buckets of days before `cutoff` (YYYY-MM-DD), published or not, with
    /// their sets of people: the `telemetry.aggregate` rule. Returns the buckets deleted
    /// (counted only on a dry run).
    pub async fn purge_aggregates(&self, cutoff: &str, dry_run: bool) -> Result<u64> {
        let backend = self.db.get_database_backend();
        let p1 = if self.postgres() { "$1" } else { "?" };
        if dry_run {
            return Ok(self
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!("SELECT COUNT(*) AS n FROM aggregates WHERE day < {p1}"),
                    [cutoff.into()],
                ))
                .await?
                .map(|r| r.try_get::<i64>("", "n"))
                .transpose()?
                .map_or(0, |n| u64::try_from(n).unwrap_or(0)));
        }
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM aggregate_people WHERE day < {p1}"),
            [cutoff.into()],
        ))
        .await?;
        let deleted = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM aggregates WHERE day < {p1}"),
                [cutoff.into()],
            ))
            .await?
            .rows_affected();
        txn.commit().await?;
        Ok(deleted)
    }

    /// Deletes an erased subject's hash from the sets of buckets still short of k (a
    /// published bucket has none: it stays as it is).
    pub(super) async fn forget_person<C: ConnectionTrait>(
        &self,
        txn: &C,
        subject: &str,
    ) -> Result<u64> {
        let mark = if self.postgres() { "$1" } else { "?" };
        Ok(txn
            .execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                format!("DELETE FROM aggregate_people WHERE person = {mark}"),
                [self.person_of_subject(subject).into()],
            ))
            .await?
            .rows_affected())
    }
}
