//! The database a `pdm` process runs on, and what the suite reads of it: the rows of
//! every table (to prove a refused call stored nothing) and their text (to prove a value
//! was never stored).

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

/// SQLite files in the process's data directory (the default), or a PostgreSQL database
/// made for this run (`PDM__DATABASE__URL`), dropped when the suite is done with it.
#[derive(Debug)]
pub enum Backend {
    /// One SQLite file per service.
    Sqlite,
    /// A fresh PostgreSQL database; one schema per service.
    Postgres {
        /// The server's administrative URL (to create and drop the database).
        admin_url: String,
        /// The database's name.
        name: String,
    },
}

/// The row count of every table, by `schema.table` (SQLite: `file.table`).
pub type RowCounts = BTreeMap<String, i64>;

impl Backend {
    /// From `PDM_TEST_DATABASE` (`sqlite`, the default, or `postgres`); a PostgreSQL
    /// database is created at `PDM_TEST_POSTGRES_URL`.
    pub async fn from_env() -> anyhow::Result<Self> {
        match std::env::var("PDM_TEST_DATABASE").as_deref() {
            Ok("postgres" | "postgresql") => Self::postgres().await,
            _ => Ok(Self::Sqlite),
        }
    }

    async fn postgres() -> anyhow::Result<Self> {
        let admin_url = std::env::var("PDM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("pdm_e2e_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(admin_url.as_str())
            .await
            .context("PDM_TEST_DATABASE=postgres but PostgreSQL is not reachable")?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        Ok(Self::Postgres { admin_url, name })
    }

    /// `PDM__DATABASE__URL` for the process; `None` for SQLite.
    pub fn url(&self) -> Option<String> {
        match self {
            Self::Sqlite => None,
            Self::Postgres { admin_url, name } => admin_url
                .rsplit_once('/')
                .map(|(base, _)| format!("{base}/{name}")),
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// Drops a PostgreSQL database (the process must be stopped).
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        if let Self::Postgres { admin_url, name } = self {
            let admin = Database::connect(admin_url.as_str()).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }

    /// The row count of every table.
    pub async fn row_counts(&self, data_dir: &Path) -> anyhow::Result<RowCounts> {
        let mut counts = RowCounts::new();
        for (label, db, tables) in self.tables(data_dir).await? {
            for table in tables {
                let row = db
                    .query_one_raw(Statement::from_string(
                        db.get_database_backend(),
                        format!("SELECT COUNT(*) AS n FROM {}", quoted(&table)),
                    ))
                    .await?
                    .context("a count")?;
                counts.insert(format!("{label}.{table}"), row.try_get::<i64>("", "n")?);
            }
            db.close().await?;
        }
        Ok(counts)
    }

    /// Every row of every table as text, for searching values that must not be there.
    pub async fn dump(&self, data_dir: &Path) -> anyhow::Result<String> {
        let mut text = String::new();
        for (label, db, tables) in self.tables(data_dir).await? {
            for table in tables {
                let sql = match db.get_database_backend() {
                    sea_orm::DatabaseBackend::Postgres => {
                        format!("SELECT t::text AS row FROM {} t", quoted(&table))
                    }
                    // SQLite has no row-to-text cast: every column, joined.
                    _ => format!("SELECT * FROM {}", quoted(&table)),
                };
                let rows = db
                    .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                    .await?;
                for row in rows {
                    text.push_str(&label);
                    text.push('.');
                    text.push_str(&table);
                    text.push(' ');
                    text.push_str(&row_text(&row));
                    text.push('\n');
                }
            }
            db.close().await?;
        }
        Ok(text)
    }

    /// The text columns `columns` of every row of `service`'s `table` (its SQLite file, or
    /// its schema on PostgreSQL).
    pub async fn rows(
        &self,
        data_dir: &Path,
        service: &str,
        table: &str,
        columns: &[&str],
    ) -> anyhow::Result<Vec<Vec<String>>> {
        let (db, qualified) = match self {
            Self::Sqlite => (
                Database::connect(format!(
                    "sqlite://{}?mode=ro",
                    data_dir.join(format!("{service}.db")).display()
                ))
                .await?,
                quoted(table),
            ),
            Self::Postgres { .. } => (
                Database::connect(self.url().context("a database URL")?.as_str()).await?,
                quoted(&format!("{service}.{table}")),
            ),
        };
        let list = columns
            .iter()
            .map(|c| format!("CAST({} AS TEXT) AS {}", quoted(c), quoted(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let found = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT {list} FROM {qualified}"),
            ))
            .await?;
        let rows = found
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| {
                        row.try_get::<Option<String>>("", c)
                            .map(Option::unwrap_or_default)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        db.close().await?;
        Ok(rows)
    }

    /// (label, connection, `schema.table` or table names) per database.
    async fn tables(
        &self,
        data_dir: &Path,
    ) -> anyhow::Result<Vec<(String, DatabaseConnection, Vec<String>)>> {
        let mut out = Vec::new();
        match self {
            Self::Sqlite => {
                let mut files: Vec<_> = std::fs::read_dir(data_dir)?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "db"))
                    .collect();
                files.sort();
                for file in files {
                    let label = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let db =
                        Database::connect(format!("sqlite://{}?mode=ro", file.display())).await?;
                    let rows = db
                        .query_all_raw(Statement::from_string(
                            db.get_database_backend(),
                            "SELECT name FROM sqlite_master WHERE type = 'table' \
                             AND name NOT LIKE 'sqlite_%' ORDER BY name",
                        ))
                        .await?;
                    let tables = rows
                        .iter()
                        .map(|r| r.try_get::<String>("", "name"))
                        .collect::<Result<_, _>>()?;
                    out.push((label, db, tables));
                }
            }
            Self::Postgres { .. } => {
                let url = self.url().context("a database URL")?;
                let db = Database::connect(url.as_str()).await?;
                let rows = db
                    .query_all_raw(Statement::from_string(
                        db.get_database_backend(),
                        "SELECT table_schema || '.' || table_name AS name \
                         FROM information_schema.tables WHERE table_type = 'BASE TABLE' \
                         AND table_schema NOT IN ('pg_catalog', 'information_schema') \
                         ORDER BY 1",
                    ))
                    .await?;
                let tables = rows
                    .iter()
                    .map(|r| r.try_get::<String>("", "name"))
                    .collect::<Result<_, _>>()?;
                out.push(("pg".to_owned(), db, tables));
            }
        }
        Ok(out)
    }
}

/// `schema.table` or `table`, each part quoted.
fn quoted(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// A row's columns as text: strings as they are, blobs lossily, numbers printed.
fn row_text(row: &sea_orm::QueryResult) -> String {
    let mut parts = Vec::new();
    for column in row.column_names() {
        if let Ok(Some(s)) = row.try_get::<Option<String>>("", &column) {
            parts.push(s);
        } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>>("", &column) {
            parts.push(String::from_utf8_lossy(&b).into_owned());
        } else if let Ok(Some(n)) = row.try_get::<Option<i64>>("", &column) {
            parts.push(n.to_string());
        }
    }
    parts.join(" | ")
}
