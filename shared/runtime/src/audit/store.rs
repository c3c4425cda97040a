//! The trail's rows: appending a batch at the head (under a lock, so replicas sharing a
//! database extend one chain), and reading it back in pages.

use chrono::DateTime;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult,
    sea_query::{Expr, ExprTrait, LockType, OnConflict, Order, Query, SelectStatement},
};

use super::{
    chain::{AccessEntry, ChainedEntry, GENESIS, chain_hash},
    migration::{AccessLog, AccessLogHead},
};

/// Appends `entries` after the current head, in one transaction.
pub async fn append(db: &DatabaseConnection, entries: &[AccessEntry]) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let txn = crate::db::begin_write(db).await?;
    let mut select = Query::select();
    select
        .columns([AccessLogHead::Seq, AccessLogHead::Hash])
        .from(AccessLogHead::Table)
        .and_where(Expr::col(AccessLogHead::Id).eq(1));
    if backend == DatabaseBackend::Postgres {
        // Another replica appending waits here; SQLite serialises writers anyway.
        select.lock(LockType::Update);
    }
    let (mut seq, mut prev) = match txn.query_one(&select).await? {
        Some(row) => (
            row.try_get::<i64>("", "seq")?,
            row.try_get::<Vec<u8>>("", "hash")?,
        ),
        None => (0, GENESIS.to_vec()),
    };
    let mut insert = Query::insert();
    insert.into_table(AccessLog::Table).columns([
        AccessLog::Seq,
        AccessLog::At,
        AccessLog::Caller,
        AccessLog::Method,
        AccessLog::SubjectId,
        AccessLog::Purpose,
        AccessLog::TraceId,
        AccessLog::PrevHash,
        AccessLog::Hash,
    ]);
    for entry in entries {
        seq += 1;
        let hash = chain_hash(&prev, seq, entry);
        insert.values_panic([
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
    txn.execute(&insert).await?;
    let head = Query::insert()
        .into_table(AccessLogHead::Table)
        .columns([AccessLogHead::Id, AccessLogHead::Seq, AccessLogHead::Hash])
        .values_panic([1.into(), seq.into(), prev.into()])
        .on_conflict(
            OnConflict::column(AccessLogHead::Id)
                .update_columns([AccessLogHead::Seq, AccessLogHead::Hash])
                .to_owned(),
        )
        .to_owned();
    txn.execute(&head).await?;
    txn.commit().await
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
        .columns([
            AccessLog::Seq,
            AccessLog::At,
            AccessLog::Caller,
            AccessLog::Method,
            AccessLog::SubjectId,
            AccessLog::Purpose,
            AccessLog::TraceId,
            AccessLog::PrevHash,
            AccessLog::Hash,
        ])
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
