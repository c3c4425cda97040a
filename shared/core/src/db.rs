//! Database transactions every store opens the same way.

use sea_orm::DatabaseConnection;

/// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`): a deferred transaction that reads first fails with `SQLITE_BUSY` when
/// another connection commits before its first write (the WAL snapshot cannot be
/// upgraded), and the busy timeout does not cover that. Other backends ignore the mode.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
