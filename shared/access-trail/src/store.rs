//! The trail's rows: appending a batch at the head (under a lock, so replicas sharing a
//! database extend one chain), reading it back in pages, and re-sealing a trail written
//! before keys.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, Statement, Value,
    sea_query::{Expr, ExprTrait, IntoIden, LockType, OnConflict, Order, Query, SelectStatement},
};

use crate::{
    chain::{AccessEntry, ChainedEntry, GENESIS, Seal, Verifier},
    migration::{AccessLog, AccessLogHead},
    retention::{TrailRule, purge_entry, purge_start},
    seal_migration::HeadScheme,
    witness::WITNESS_METHOD,
};

/// The head's scheme for a SHA-256 chain (written before keys).
const LEGACY_SCHEME: i32 = 1;
/// The head's scheme for a keyed MAC chain.
const KEYED_SCHEME: i32 = 2;
/// Entries re-sealed per read.
const RESEAL_PAGE: u64 = 10_000;

/// A head of the chain: the last position and its MAC.
pub type Head = (i64, Vec<u8>);

/// Appends `entries` after the current head, in one transaction, sealed with `seal`;
/// returns the new head (None when there was nothing to append).
pub async fn append(
    db: &DatabaseConnection,
    seal: &Seal,
    entries: &[AccessEntry],
) -> Result<Option<Head>, DbErr> {
    if entries.is_empty() {
        return Ok(None);
    }
    let txn = pdm_core::db::begin_write(db).await?;
    let (seq, prev) = locked_head(&txn).await?;
    let head = append_in(&txn, seal, seq, prev, entries).await?;
    txn.commit().await?;
    Ok(Some(head))
}

/// Appends `entries` after `known`, the head this writer wrote last, without reading the
/// head first: the head moves only if it is still `known` (one conditional update, which
/// on PostgreSQL also takes the row lock), then the entries go in, in one transaction.
/// Returns the new head, or None when the head had moved (another replica appended, or a
/// purge): then nothing was written and the caller appends with [`append`]. The trail's
/// common case being one writer, a batch costs four statements instead of five on SQLite,
/// and one instead of five on PostgreSQL ([`append_after_in_one`]).
pub async fn append_after(
    db: &DatabaseConnection,
    seal: &Seal,
    known: &Head,
    entries: &[AccessEntry],
) -> Result<Option<Head>, DbErr> {
    if entries.is_empty() {
        return Ok(Some(known.clone()));
    }
    let (rows, head) = chained(seal, known.0, known.1.clone(), entries);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let moved = append_after_in_one(db, known, &head, rows).await?;
        return Ok(moved.then_some(head));
    }
    let txn = pdm_core::db::begin_write(db).await?;
    let moved = Query::update()
        .table(AccessLogHead::Table)
        .values([
            (AccessLogHead::Seq, head.0.into()),
            (AccessLogHead::Hash, head.1.clone().into()),
        ])
        .and_where(Expr::col(AccessLogHead::Id).eq(1))
        .and_where(Expr::col(AccessLogHead::Seq).eq(known.0))
        .and_where(Expr::col(AccessLogHead::Hash).eq(known.1.clone()))
        .and_where(Expr::col(HeadScheme::Scheme).eq(KEYED_SCHEME))
        .to_owned();
    if txn.execute(&moved).await?.rows_affected() != 1 {
        // Dropping the transaction rolls it back: nothing was written.
        return Ok(None);
    }
    txn.execute(&insert_rows(rows)).await?;
    txn.commit().await?;
    Ok(Some(head))
}

/// [`append_after`] on PostgreSQL: the conditional move of the head and the insert in one
/// statement (a data-modifying `WITH`, atomic as any statement), one round trip instead
/// of four. Whether it moved the head (and so stored the rows).
async fn append_after_in_one(
    db: &DatabaseConnection,
    known: &Head,
    head: &Head,
    rows: Vec<[Value; 9]>,
) -> Result<bool, DbErr> {
    let count = rows.len();
    let mut values: Vec<Value> = vec![
        head.0.into(),
        head.1.clone().into(),
        known.0.into(),
        known.1.clone().into(),
        KEYED_SCHEME.into(),
    ];
    let mut tuples = Vec::with_capacity(count);
    for row in rows {
        let first = values.len() + 1;
        let places: Vec<String> = (first..first + row.len())
            .map(|i| format!("${i}"))
            .collect();
        tuples.push(format!("({})", places.join(", ")));
        values.extend(row);
    }
    let sql = format!(
        "WITH moved AS (UPDATE access_log_head SET seq = $1, hash = $2 \
         WHERE id = 1 AND seq = $3 AND hash = $4 AND scheme = $5 RETURNING 1) \
         INSERT INTO access_log (seq, at, caller, method, subject_id, purpose, trace_id, prev_hash, hash) \
         SELECT * FROM (VALUES {}) AS v WHERE EXISTS (SELECT 1 FROM moved)",
        tuples.join(", ")
    );
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    Ok(usize::try_from(done.rows_affected()).ok() == Some(count))
}

/// The head, locked until the transaction ends (PostgreSQL; SQLite serialises writers
/// anyway): `(0, GENESIS)` before the first entry.
async fn locked_head(txn: &impl ConnectionTrait) -> Result<(i64, Vec<u8>), DbErr> {
    let backend = txn.get_database_backend();
    let mut select = Query::select();
    select
        .columns([AccessLogHead::Seq, AccessLogHead::Hash])
        .from(AccessLogHead::Table)
        .and_where(Expr::col(AccessLogHead::Id).eq(1));
    if backend == DatabaseBackend::Postgres {
        // Another replica appending waits here; SQLite serialises writers anyway.
        select.lock(LockType::Update);
    }
    Ok(match txn.query_one(&select).await? {
        Some(row) => (
            row.try_get::<i64>("", "seq")?,
            row.try_get::<Vec<u8>>("", "hash")?,
        ),
        None => (0, GENESIS.to_vec()),
    })
}

/// Appends `entries` after the head (`seq`, `prev`) inside `txn`, and moves the head;
/// returns the new head.
async fn append_in(
    txn: &impl ConnectionTrait,
    seal: &Seal,
    seq: i64,
    prev: Vec<u8>,
    entries: &[AccessEntry],
) -> Result<Head, DbErr> {
    let (rows, (seq, prev)) = chained(seal, seq, prev, entries);
    txn.execute(&insert_rows(rows)).await?;
    txn.execute(&set_head(seq, prev.clone())).await?;
    Ok((seq, prev))
}

/// The columns of an entry's row, in the order [`chained`] gives its values and
/// [`append_after_in_one`] names them.
const ENTRY_COLUMNS: [AccessLog; 9] = [
    AccessLog::Seq,
    AccessLog::At,
    AccessLog::Caller,
    AccessLog::Method,
    AccessLog::SubjectId,
    AccessLog::Purpose,
    AccessLog::TraceId,
    AccessLog::PrevHash,
    AccessLog::Hash,
];

/// The rows of `entries` sealed in a chain after (`seq`, `prev`) ([`ENTRY_COLUMNS`]), and
/// the head after them.
fn chained(
    seal: &Seal,
    mut seq: i64,
    mut prev: Vec<u8>,
    entries: &[AccessEntry],
) -> (Vec<[Value; 9]>, Head) {
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let hash = seal.seal(&prev, seq, entry);
        rows.push([
            seq.into(),
            entry.at_text().into(),
            entry.caller.clone().into(),
            entry.method.clone().into(),
            entry.subject_id.clone().into(),
            entry.purpose.clone().into(),
            entry.trace_id.clone().into(),
            prev.clone().into(),
            hash.clone().into(),
        ]);
        prev = hash;
    }
    (rows, (seq, prev))
}

/// The insert of chained rows.
fn insert_rows(rows: Vec<[Value; 9]>) -> sea_orm::sea_query::InsertStatement {
    let mut insert = Query::insert();
    insert.into_table(AccessLog::Table).columns(ENTRY_COLUMNS);
    for row in rows {
        insert.values_panic(row.map(Into::into));
    }
    insert
}

/// What a purge of the trail did (or would do, on a dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrailPurge {
    /// Entries deleted.
    pub purged: u64,
    /// Expired entries kept because of a legal hold.
    pub held: u64,
}

/// Deletes the entries `rule` lets go: the prefix before the first entry still within the
/// period or naming a held subject, then appends the purge entry naming the new start,
/// sealed with `seal`, in one transaction (see [`crate::retention`]). `caller` is who asked.
pub async fn purge_before(
    db: &DatabaseConnection,
    seal: &Seal,
    rule: &TrailRule,
    caller: &str,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<TrailPurge, DbErr> {
    let cutoff = rule
        .cutoff
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let txn = pdm_core::db::begin_write(db).await?;
    let (head, prev) = locked_head(&txn).await?;
    let expired = count(&txn, Expr::col(AccessLog::At).lt(cutoff.clone())).await?;
    if head == 0 || expired == 0 {
        return Ok(TrailPurge::default());
    }
    if rule.blanket {
        return Ok(TrailPurge {
            purged: 0,
            held: expired,
        });
    }
    // Times are stored as fixed-width RFC 3339 in UTC: text order is time order.
    let mut kept = Expr::col(AccessLog::At).gte(cutoff.clone());
    if !rule.held_subjects.is_empty() {
        kept = kept.or(Expr::col(AccessLog::SubjectId).is_in(rule.held_subjects.clone()));
    }
    let first_kept = Query::select()
        .expr_as(Expr::col(AccessLog::Seq).min(), "first")
        .from(AccessLog::Table)
        .and_where(kept)
        .to_owned();
    let first_kept = match txn.query_one(&first_kept).await? {
        Some(row) => row.try_get::<Option<i64>>("", "first")?,
        None => None,
    };
    let start = purge_start(first_kept, head);
    let purged = count(&txn, Expr::col(AccessLog::Seq).lt(start)).await?;
    let held = if rule.held_subjects.is_empty() {
        0
    } else {
        expired.saturating_sub(purged)
    };
    if dry_run || purged == 0 {
        return Ok(TrailPurge { purged, held });
    }
    let delete = Query::delete()
        .from_table(AccessLog::Table)
        .and_where(Expr::col(AccessLog::Seq).lt(start))
        .to_owned();
    txn.execute(&delete).await?;
    append_in(&txn, seal, head, prev, &[purge_entry(start, caller, now)]).await?;
    txn.commit().await?;
    Ok(TrailPurge { purged, held })
}

/// How many entries match `condition`.
async fn count(txn: &impl ConnectionTrait, condition: Expr) -> Result<u64, DbErr> {
    let select = Query::select()
        .expr_as(Expr::col(AccessLog::Seq).count(), "n")
        .from(AccessLog::Table)
        .and_where(condition)
        .to_owned();
    Ok(match txn.query_one(&select).await? {
        Some(row) => u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0),
        None => 0,
    })
}

/// Writes the head: the last position and MAC, keyed.
fn set_head(seq: i64, mac: Vec<u8>) -> sea_orm::sea_query::InsertStatement {
    Query::insert()
        .into_table(AccessLogHead::Table)
        .columns([
            AccessLogHead::Id.into_iden(),
            AccessLogHead::Seq.into_iden(),
            AccessLogHead::Hash.into_iden(),
            HeadScheme::Scheme.into_iden(),
        ])
        .values_panic([1.into(), seq.into(), mac.into(), KEYED_SCHEME.into()])
        .on_conflict(
            OnConflict::column(AccessLogHead::Id)
                .update_columns([
                    AccessLogHead::Seq.into_iden(),
                    AccessLogHead::Hash.into_iden(),
                    HeadScheme::Scheme.into_iden(),
                ])
                .to_owned(),
        )
        .to_owned()
}

/// What [`reseal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealed {
    /// The trail was already keyed (or empty).
    AlreadyKeyed,
    /// This many entries were checked against their SHA-256 chain and sealed with the key.
    Sealed(u64),
    /// The SHA-256 chain did not verify (this many problems): left as it is, so
    /// verification reports it, rather than blessing it with the key.
    Broken(usize),
}

/// Seals a trail written before keys (a scheme-1 head) with `seal`, in one transaction,
/// after checking its SHA-256 chain. Run once at start, before the writer.
pub async fn reseal(db: &DatabaseConnection, seal: &Seal) -> Result<Resealed, DbErr> {
    let txn = pdm_core::db::begin_write(db).await?;
    let select = Query::select()
        .columns([
            AccessLogHead::Seq.into_iden(),
            AccessLogHead::Hash.into_iden(),
            HeadScheme::Scheme.into_iden(),
        ])
        .from(AccessLogHead::Table)
        .and_where(Expr::col(AccessLogHead::Id).eq(1))
        .to_owned();
    let Some(row) = txn.query_one(&select).await? else {
        return Ok(Resealed::AlreadyKeyed);
    };
    if row.try_get::<i32>("", "scheme")? != LEGACY_SCHEME {
        return Ok(Resealed::AlreadyKeyed);
    }
    let head = (
        row.try_get::<i64>("", "seq")?,
        row.try_get::<Vec<u8>>("", "hash")?,
    );
    let mut legacy = Verifier::new(Seal::Legacy, Vec::new());
    let mut prev = GENESIS.to_vec();
    let mut after = i64::MIN;
    loop {
        let rows = page_in(&txn, after, RESEAL_PAGE).await?;
        let Some(end) = rows.last().map(|c| c.seq) else {
            break;
        };
        for c in rows.iter().filter(|c| c.seq <= head.0) {
            legacy.push(c);
            let mac = seal.seal(&prev, c.seq, &c.entry);
            let update = Query::update()
                .table(AccessLog::Table)
                .values([
                    (AccessLog::PrevHash, prev.clone().into()),
                    (AccessLog::Hash, mac.clone().into()),
                ])
                .and_where(Expr::col(AccessLog::Seq).eq(c.seq))
                .to_owned();
            txn.execute(&update).await?;
            prev = mac;
        }
        after = end;
    }
    let (entries, problems) = legacy.finish(Some(head.clone()));
    if !problems.is_empty() {
        // Dropping the transaction rolls the new seals back.
        return Ok(Resealed::Broken(problems.len()));
    }
    txn.execute(&set_head(head.0, prev)).await?;
    txn.commit().await?;
    Ok(Resealed::Sealed(entries))
}

/// The recorded head: the last position and hash (None before the first entry).
pub async fn head(db: &DatabaseConnection) -> Result<Option<(i64, Vec<u8>)>, DbErr> {
    let select = Query::select()
        .columns([AccessLogHead::Seq, AccessLogHead::Hash])
        .from(AccessLogHead::Table)
        .and_where(Expr::col(AccessLogHead::Id).eq(1))
        .to_owned();
    match db.query_one(&select).await? {
        Some(row) => Ok(Some((
            row.try_get::<i64>("", "seq")?,
            row.try_get::<Vec<u8>>("", "hash")?,
        ))),
        None => Ok(None),
    }
}

fn entries_query() -> SelectStatement {
    Query::select()
        .columns(ENTRY_COLUMNS)
        .from(AccessLog::Table)
        .order_by(AccessLog::Seq, Order::Asc)
        .to_owned()
}

fn entry(row: &QueryResult) -> Result<ChainedEntry, DbErr> {
    let at: String = row.try_get("", "at")?;
    Ok(ChainedEntry {
        seq: row.try_get("", "seq")?,
        entry: AccessEntry {
            // An unreadable time cannot match its hash: the verifier reports it edited.
            at: DateTime::parse_from_rfc3339(&at)
                .map(|t| t.to_utc())
                .unwrap_or_default(),
            caller: row.try_get("", "caller")?,
            method: row.try_get("", "method")?,
            subject_id: row.try_get("", "subject_id")?,
            purpose: row.try_get("", "purpose")?,
            trace_id: row.try_get("", "trace_id")?,
        },
        prev_hash: row.try_get("", "prev_hash")?,
        hash: row.try_get("", "hash")?,
    })
}

/// Up to `limit` entries after position `after`, in order.
pub async fn page(
    db: &DatabaseConnection,
    after: i64,
    limit: u64,
) -> Result<Vec<ChainedEntry>, DbErr> {
    page_in(db, after, limit).await
}

async fn page_in(
    db: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<ChainedEntry>, DbErr> {
    let select = entries_query()
        .and_where(Expr::col(AccessLog::Seq).gt(after))
        .limit(limit)
        .to_owned();
    db.query_all(&select).await?.iter().map(entry).collect()
}

/// Up to `limit` entries about `subject_id` after position `after`, in order.
pub async fn of_subject(
    db: &DatabaseConnection,
    subject_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<ChainedEntry>, DbErr> {
    let select = entries_query()
        .and_where(Expr::col(AccessLog::SubjectId).eq(subject_id))
        .and_where(Expr::col(AccessLog::Seq).gt(after))
        .limit(limit)
        .to_owned();
    db.query_all(&select).await?.iter().map(entry).collect()
}

/// Up to `limit` witness entries for `service`'s head after position `after`, in order.
pub async fn witnessed(
    db: &DatabaseConnection,
    service: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<ChainedEntry>, DbErr> {
    // Witness entries name no subject: the subject index finds them.
    let select = entries_query()
        .and_where(Expr::col(AccessLog::SubjectId).eq(""))
        .and_where(Expr::col(AccessLog::Method).eq(WITNESS_METHOD))
        .and_where(Expr::col(AccessLog::Caller).eq(service))
        .and_where(Expr::col(AccessLog::Seq).gt(after))
        .limit(limit)
        .to_owned();
    db.query_all(&select).await?.iter().map(entry).collect()
}
