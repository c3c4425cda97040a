//! Per-connection SQLite settings that sqlx has no API for, applied to every connection a
//! service's pool opens.
//!
//! **A stable query plan** (`SQLITE_DBCONFIG_ENABLE_QPSG`, [`stabilise_plans`]). Without
//! it SQLite treats a bound `LIMIT ?` (sea-orm binds every limit, `one()`'s too) as able
//! to change the plan, and expires the cached statement each time the value is bound
//! again: every such query was parsed and planned anew on each run. Profiled in
//! `rights.throughput` on SQLite, that re-preparing (`sqlite3Reprepare` under
//! `sqlite3_step`) was 9 % of all CPU.
//!
//! A busy handler waiting in microsecond steps instead of SQLite's millisecond sleeps was
//! tried here too and measured no better end to end (`rights.throughput`, 2 cores): the
//! waiters' wake-ups compete with the lock holder for the same cores.

use std::ffi::c_int;

use sea_orm::sqlx::{Error, sqlite::SqliteConnection};

/// Turns on the query planner stability guarantee: a prepared statement keeps its plan
/// whatever values are bound to it, so the statement cache is never expired by a binding.
pub async fn stabilise_plans(connection: &mut SqliteConnection) -> Result<(), Error> {
    match qpsg(connection, 1).await? {
        (libsqlite3_sys::SQLITE_OK, 1) => Ok(()),
        (rc, _) => Err(Error::Protocol(format!(
            "enabling SQLITE_DBCONFIG_ENABLE_QPSG failed with code {rc}"
        ))),
    }
}

/// Whether `connection` keeps its query plans whatever is bound ([`stabilise_plans`]).
pub async fn plans_are_stable(connection: &mut SqliteConnection) -> Result<bool, Error> {
    match qpsg(connection, -1).await? {
        (libsqlite3_sys::SQLITE_OK, on) => Ok(on == 1),
        (rc, _) => Err(Error::Protocol(format!(
            "reading SQLITE_DBCONFIG_ENABLE_QPSG failed with code {rc}"
        ))),
    }
}

/// Sets the option (1 on, 0 off, -1 leaves it): SQLite's result code and the setting now.
async fn qpsg(connection: &mut SqliteConnection, set: c_int) -> Result<(c_int, c_int), Error> {
    let mut handle = connection.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut now_on: c_int = -1;
    #[allow(unsafe_code)]
    // SAFETY: `db` is the open connection's handle, held locked for this call; the option
    // takes an int and a pointer to an int SQLite writes the setting to, which lives on
    // this stack frame for the whole call.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            set,
            &raw mut now_on,
        )
    };
    Ok((rc, now_on))
}
