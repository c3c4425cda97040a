//! Database connection and migrations: SQLite (a file per service under `data_dir`) by
//! default, PostgreSQL (a schema per service) when a URL is configured.

use std::time::Duration;

use anyhow::Context as _;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

pub use pdm_core::db::begin_write;

use crate::settings::Settings;

/// Where a service's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite database (a file, or `sqlite::memory:`).
    Sqlite {
        /// sqlx URL.
        url: String,
    },
    /// A PostgreSQL database, optionally confined to one schema.
    Postgres {
        /// sqlx URL.
        url: String,
        /// Schema created on first start and put first on the search path.
        schema: Option<String>,
    },
}

impl DatabaseTarget {
    /// Resolves the target of `service`: its own `database_url`, else `database.url` with
    /// a schema named after the service, else `<data_dir>/<service>.db`.
    pub fn resolve(settings: &Settings, service: &str) -> anyhow::Result<Self> {
        let own = &settings.service(service)?.database_url;
        if !own.is_empty() {
            return Ok(Self::from_url(own, None));
        }
        if !settings.database.url.is_empty() {
            return Ok(Self::from_url(&settings.database.url, Some(service)));
        }
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let file = settings.data_dir.join(format!("{service}.db"));
        Ok(Self::Sqlite {
            url: format!("sqlite://{}?mode=rwc", file.display()),
        })
    }

    fn from_url(url: &str, schema: Option<&str>) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite {
                url: url.to_owned(),
            }
        } else {
            Self::Postgres {
                url: url.to_owned(),
                schema: schema.map(str::to_owned),
            }
        }
    }

    /// A description for logs: the backend and schema, never credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { url } => format!("sqlite ({})", url.trim_start_matches("sqlite://")),
            Self::Postgres { schema, .. } => match schema {
                Some(schema) => format!("postgres (schema {schema})"),
                None => "postgres".to_owned(),
            },
        }
    }
}

/// Connects to `target`.
pub async fn connect(
    settings: &Settings,
    target: &DatabaseTarget,
) -> anyhow::Result<DatabaseConnection> {
    let timeout = settings.database.connect_timeout;
    let max = settings.database.max_connections;
    match target {
        DatabaseTarget::Sqlite { url } => {
            let mut options = ConnectOptions::new(url.clone());
            options
                .max_connections(max)
                .min_connections(1)
                .connect_timeout(timeout)
                .acquire_timeout(timeout)
                // A SQLite connection is a thread of this process, not a peer that can
                // hang up: sqlx's default ping on every checkout is a thread hand-off
                // per statement for nothing (see PING_IF_IDLE_FOR).
                .test_before_acquire(false)
                .sqlx_logging(false)
                .map_sqlx_sqlite_opts(|o| {
                    // WAL lets readers run beside the writer; the busy timeout makes
                    // concurrent writers wait for the lock instead of failing.
                    o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                })
                // Stable plans: no cached statement re-prepared because a LIMIT was bound
                // again (see pdm_sqlite_conn).
                .map_sqlx_sqlite_pool_opts(|pool| {
                    pool.after_connect(|connection, _| {
                        Box::pin(pdm_sqlite_conn::stabilise_plans(connection))
                    })
                });
            Ok(Database::connect(options)
                .await
                .context("connecting to SQLite")?)
        }
        DatabaseTarget::Postgres { url, schema } => {
            if let Some(schema) = schema {
                anyhow::ensure!(
                    !schema.is_empty()
                        && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "schema name must be lowercase letters and underscores"
                );
                let admin = Database::connect(postgres_options(url, timeout, 1))
                    .await
                    .context("connecting to PostgreSQL")?;
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .await
                    .context("creating the service's schema")?;
                admin.close().await.ok();
            }
            let mut options = postgres_options(url, timeout, max);
            if let Some(schema) = schema {
                options.set_schema_search_path(schema.clone());
            }
            if let Some(name) = application_name(url, schema.as_deref()) {
                options.map_sqlx_postgres_opts(move |o| o.application_name(&name));
            }
            Ok(Database::connect(options)
                .await
                .context("connecting to PostgreSQL")?)
        }
    }
}

/// How long a pooled PostgreSQL connection may sit unused before it is checked (a round
/// trip) at its next checkout. sqlx checks on every checkout by default: one more round
/// trip for every statement outside a transaction, a sixth of a cache-missing consent
/// check (docs/scale.md, "The ping before every statement"). A connection in use is proven
/// by its last statement; one idle for longer may have been dropped by the server, a proxy
/// or a failover, and is checked as before.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// The name a service's PostgreSQL sessions carry (`pg_stat_activity.application_name`,
/// `%a` in the server's log prefix), so an operator sees which service holds which
/// connections and runs which statements on a shared server: `pdm/<schema>`. A name set
/// in the URL (`?application_name=`) is kept.
fn application_name(url: &str, schema: Option<&str>) -> Option<String> {
    if url.contains("application_name=") {
        return None;
    }
    Some(match schema {
        Some(schema) => format!("pdm/{schema}"),
        None => "pdm".to_owned(),
    })
}

fn postgres_options(url: &str, timeout: Duration, max: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(1)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .sqlx_logging(false);
    options
}

/// Connects to the service's database and runs its pending migrations.
pub async fn connect_and_migrate<M: MigratorTrait>(
    settings: &Settings,
    service: &str,
) -> anyhow::Result<DatabaseConnection> {
    let target = DatabaseTarget::resolve(settings, service)?;
    let db = connect(settings, &target).await?;
    M::up(&db, None)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {}", crate::error::db_error_kind(&e)))?;
    tracing::info!(service, database = %target.describe(), "database ready");
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity's SQLite database in `dir`, connected as a service connects.
    async fn sqlite_in(dir: &tempfile::TempDir) -> DatabaseConnection {
        let settings =
            Settings::with_overrides([("data_dir".to_owned(), dir.path().display().to_string())])
                .expect("settings");
        let target = DatabaseTarget::resolve(&settings, "identity").expect("target");
        connect(&settings, &target).await.expect("connect")
    }

    #[tokio::test]
    async fn a_sqlite_checkout_is_not_a_ping() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sqlite_in(&dir).await;
        let options = db.get_sqlite_connection_pool().options();
        assert!(!options.get_test_before_acquire());
    }

    #[test]
    fn only_a_postgres_connection_idle_for_a_while_is_pinged_at_checkout() {
        let options = postgres_options("postgres://localhost/x", Duration::from_secs(1), 4);
        assert!(!options.get_test_before_acquire());
        assert_eq!(
            options.get_test_before_acquire_if_idle_for(),
            Some(PING_IF_IDLE_FOR)
        );
    }

    #[test]
    fn a_postgres_session_is_named_after_its_schema_unless_the_url_names_it() {
        assert_eq!(
            application_name("postgres://h/db", Some("consent")).as_deref(),
            Some("pdm/consent")
        );
        assert_eq!(
            application_name("postgres://h/db", None).as_deref(),
            Some("pdm")
        );
        assert_eq!(
            application_name("postgres://h/db?application_name=mine", Some("consent")),
            None
        );
    }

    #[tokio::test]
    async fn every_sqlite_connection_of_a_pool_keeps_its_query_plans() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sqlite_in(&dir).await;
        let pool = db.get_sqlite_connection_pool();
        // Several at once, so the pool opens more than its first connection.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.expect("a connection"));
        }
        for connection in &mut held {
            assert!(
                pdm_sqlite_conn::plans_are_stable(connection)
                    .await
                    .expect("read the setting")
            );
        }
    }
}
