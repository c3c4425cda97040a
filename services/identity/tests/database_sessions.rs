//! On a shared PostgreSQL server every service's sessions carry its name, so an operator
//! reading `pg_stat_activity` (or a log prefixed with `%a`) sees which service holds which
//! connections and runs which statements (docs/operations.md).

use pdm_identity::Identity;
use pdm_testkit::{Backend, TestMesh};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// The names of the other sessions open on `db`'s database.
async fn others_on(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT DISTINCT application_name FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             ORDER BY application_name",
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get::<String>("", "application_name"))
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn each_postgres_session_names_its_service_and_its_key_store() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    if mesh.backend() != Backend::Postgres {
        // SQLite has no sessions to name: each service has a file of its own.
        return Ok(());
    }
    let data = others_on(&mesh.connect_db("identity").await?).await?;
    assert!(data.contains(&"pdm/identity".to_owned()), "{data:?}");
    let keys = others_on(&mesh.connect_key_store("identity").await?).await?;
    assert!(keys.contains(&"pdm/identity_keys".to_owned()), "{keys:?}");
    Ok(())
}
