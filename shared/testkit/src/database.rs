//! The database a test mesh runs on.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

/// Which backend tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per service in the mesh's temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database per mesh, a schema per service.
    Postgres,
}

impl Backend {
    /// From `PDM_TEST_DATABASE` (`sqlite`, the default, or `postgres`).
    pub fn from_env() -> Self {
        match std::env::var("PDM_TEST_DATABASE").as_deref() {
            Ok("postgres") | Ok("postgresql") => Self::Postgres,
            _ => Self::Sqlite,
        }
    }
}

/// A database made for one mesh, and one for its key store; PostgreSQL ones are dropped
/// with it.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: Option<String>,
    key_store_url: Option<String>,
    admin_url: String,
    name: String,
}

/// The key store database of the mesh database `name`.
fn keys_name(name: &str) -> String {
    format!("{name}_keys")
}

fn admin_url() -> String {
    std::env::var("PDM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDatabase {
    /// Creates the database for `backend`.
    pub async fn create(backend: Backend) -> anyhow::Result<Self> {
        let admin_url = admin_url();
        match backend {
            Backend::Sqlite => Ok(Self {
                backend,
                url: None,
                key_store_url: None,
                admin_url,
                name: String::new(),
            }),
            Backend::Postgres => {
                let name = format!("pdm_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(admin_url.as_str()).await.map_err(|e| {
                    anyhow::anyhow!(
                        "PDM_TEST_DATABASE=postgres but PostgreSQL is not reachable: {e}"
                    )
                })?;
                // The key store is a database of its own, as in production.
                for db in [name.clone(), keys_name(&name)] {
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE \"{db}\""))
                        .await?;
                }
                admin.close().await.ok();
                let Some((base, _)) = admin_url.rsplit_once('/') else {
                    anyhow::bail!("PDM_TEST_POSTGRES_URL must end with /<database>");
                };
                Ok(Self {
                    backend,
                    url: Some(format!("{base}/{name}")),
                    key_store_url: Some(format!("{base}/{}", keys_name(&name))),
                    admin_url,
                    name,
                })
            }
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `database.url` setting for the mesh (`None` for SQLite files).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The `crypto.key_store_url` setting for the mesh (`None` for SQLite files).
    pub fn key_store_url(&self) -> Option<&str> {
        self.key_store_url.as_deref()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let admin = Database::connect(admin_url.as_str()).await.ok()?;
                let mut dropped = Some(());
                for db in [name.clone(), keys_name(&name)] {
                    let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                    let done = tokio::time::timeout(
                        Duration::from_secs(20),
                        admin.execute_unprepared(&sql),
                    )
                    .await;
                    dropped = dropped.and(done.ok().and_then(Result::ok).map(drop));
                }
                admin.close().await.ok();
                dropped
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
