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

/// A database made for one mesh; PostgreSQL ones are dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: Option<String>,
    admin_url: String,
    name: String,
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
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                admin.close().await.ok();
                let url = match admin_url.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => anyhow::bail!("PDM_TEST_POSTGRES_URL must end with /<database>"),
                };
                Ok(Self {
                    backend,
                    url: Some(url),
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
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let done =
                    tokio::time::timeout(Duration::from_secs(20), admin.execute_unprepared(&sql))
                        .await;
                admin.close().await.ok();
                done.ok()?.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
