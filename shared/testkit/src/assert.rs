//! Assertions tests share: field violations of a status, rows in a raw table, plaintext
//! in raw database storage.

use pdm_runtime::tonic_types::StatusExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use tonic::{Code, Status};

use crate::{Backend, Mesh};

/// The fields named by an `INVALID_ARGUMENT` status's `BadRequest` detail. Panics if the
/// status is something else.
pub fn field_violations(status: &Status) -> Vec<String> {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "expected INVALID_ARGUMENT, got {status:?}"
    );
    let details = status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT without a BadRequest detail");
    details
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Rows in `table` (a trusted identifier).
pub async fn rows(db: &DatabaseConnection, table: &str) -> u64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count query")
        .expect("a count row");
    let n: i64 = row.try_get("", "n").expect("count column");
    u64::try_from(n).unwrap_or(0)
}

/// Every byte a service's database holds, as text: the SQLite files, or a dump of every
/// table in the service's PostgreSQL schema.
pub async fn raw_storage(mesh: &Mesh, service: &str) -> Vec<u8> {
    match mesh.backend() {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for file in mesh.sqlite_files(service) {
                bytes.extend(std::fs::read(file).expect("read sqlite file"));
            }
            assert!(!bytes.is_empty(), "no SQLite files found for {service}");
            bytes
        }
        Backend::Postgres => {
            let db = mesh.connect_db(service).await.expect("connect");
            // Escape output prints the printable bytes of a bytea as themselves, so a
            // plaintext value stored in a binary column would show up in the dump.
            let txn = db.begin().await.expect("transaction");
            let backend = txn.get_database_backend();
            txn.execute_unprepared("SET LOCAL bytea_output = 'escape'")
                .await
                .expect("bytea_output");
            let tables = txn
                .query_all_raw(Statement::from_string(
                    backend,
                    format!(
                        "SELECT table_name::text AS t FROM information_schema.tables \
                         WHERE table_schema = '{service}' AND table_type = 'BASE TABLE'"
                    ),
                ))
                .await
                .expect("list tables");
            let mut dump = Vec::new();
            for t in tables {
                let table: String = t.try_get("", "t").expect("table name");
                let rows = txn
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT r::text AS line FROM \"{service}\".\"{table}\" r"),
                    ))
                    .await
                    .expect("dump table");
                for r in rows {
                    let line: String = r.try_get("", "line").expect("row text");
                    dump.extend(line.into_bytes());
                    dump.push(b'\n');
                }
            }
            txn.rollback().await.ok();
            assert!(!dump.is_empty(), "no rows found in schema {service}");
            dump
        }
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// Rows in `table` whose `column` equals `value` (table and column are trusted
/// identifiers; the value is bound).
pub async fn rows_where(db: &DatabaseConnection, table: &str, column: &str, value: &str) -> u64 {
    let backend = db.get_database_backend();
    let placeholder = match backend {
        sea_orm::DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = {placeholder}");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [value.into()]))
        .await
        .expect("count query")
        .expect("a count row");
    let n: i64 = row.try_get("", "n").expect("count column");
    u64::try_from(n).unwrap_or(0)
}
