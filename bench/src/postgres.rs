//! A throw-away PostgreSQL database for the benchmarks that need one: `pdm_bench_<random>`
//! on the server named by `PDM_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the end.

use std::time::Duration;

use anyhow::Context as _;
use pdm_runtime::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use serde_json::{Value, json};

use super::harness;

/// The server benchmarks create their database on.
fn admin_url() -> String {
    std::env::var("PDM_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The server's address without credentials, for the report.
pub fn server() -> String {
    let url = admin_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    host.split('/').next().unwrap_or(host).to_owned()
}

/// A database made for one benchmark run.
pub struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

async fn connect(url: &str, max: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

impl BenchDatabase {
    /// Creates a fresh database; fails when PostgreSQL is not reachable.
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = admin_url();
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("PDM_BENCH_POSTGRES_URL must end with /<database>")?;
        let name = format!("pdm_bench_{}", harness::uuid_like());
        let url = format!("{base}/{name}");
        let admin = connect(&admin_url, 1).await?;
        warn_if_too_few_connections(&admin).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await.ok();
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }

    /// The `database.url` setting for services.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool of `max` connections to the database.
    pub async fn connect(&self, max: u32) -> anyhow::Result<DatabaseConnection> {
        connect(&self.url, max).await
    }

    /// Drops the database (connections still open are ended).
    pub async fn drop(self) -> anyhow::Result<()> {
        let admin = connect(&self.admin_url, 1).await?;
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await?;
        admin.close().await.ok();
        Ok(())
    }
}

/// The connections PostgreSQL must allow for a benchmark's mesh: five services, each with
/// a pool and a key store's pool of `database.max_connections` (16), and the benchmark's
/// own. CI and docs/operations.md set 300.
const CONNECTIONS_NEEDED: i64 = 200;

/// Says on stderr when the server allows fewer connections than a mesh may open. A pool
/// refused a connection ("too many clients") waits until `database.connect_timeout_ms`
/// and the call fails: on a server left at PostgreSQL's default of 100, the data-subject
/// request benchmark lost a third to two thirds of its rate in 5-second stalls.
async fn warn_if_too_few_connections(admin: &DatabaseConnection) {
    let allowed = admin
        .query_one_raw(pdm_runtime::sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT current_setting('max_connections')::bigint AS n",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<i64>("", "n").ok());
    if let Some(allowed) = allowed.filter(|&n| n < CONNECTIONS_NEEDED) {
        eprintln!(
            "warning: PostgreSQL at {} allows {allowed} connections; a benchmark's mesh may \
             open {CONNECTIONS_NEEDED}: refused connections stall calls and lower the figures \
             (raise max_connections to 300, as .ci/run does)",
            server()
        );
    }
}

/// Runs `measure` on a fresh database, dropped afterwards (a failure to drop is only
/// warned about); one row named `name` saying it was skipped when PostgreSQL is
/// unreachable.
pub async fn on_fresh_database(
    name: &str,
    measure: impl AsyncFnOnce(&BenchDatabase) -> anyhow::Result<Vec<Value>>,
) -> anyhow::Result<Vec<Value>> {
    let database = match BenchDatabase::create().await {
        Ok(database) => database,
        Err(e) => {
            return Ok(vec![json!({
                "name": name,
                "skipped": format!("PostgreSQL is not reachable at {}: {e}", server()),
            })]);
        }
    };
    let measured = measure(&database).await;
    if let Err(e) = database.drop().await {
        eprintln!("warning: could not drop the benchmark database: {e}");
    }
    measured
}
