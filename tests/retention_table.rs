//! Every table of every service has a retention rule in `docs/retention.md` (issue 16:
//! "Every table of every service appears in a retention table in `docs/` with its rule";
//! the policy's "How long we keep your information"). The mesh is started whole, so the
//! tables are the ones the migrators (and the starts, e.g. telemetry's time partitions)
//! really create, on the backend `PDM_TEST_DATABASE` selects.

use std::collections::{BTreeMap, BTreeSet};

use pdm_runtime::sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use pdm_testkit::TestMesh;

/// The services of the mesh, by the name the doc's first column uses.
const SERVICES: [&str; 7] = [
    "identity",
    "consent",
    "transfers",
    "telemetry",
    "rights",
    "retention",
    "incidents",
];

/// The tables of a service's database (its schema on PostgreSQL).
async fn tables(db: &DatabaseConnection) -> anyhow::Result<BTreeSet<String>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String>("", "name")?))
        .collect()
}

/// The `(service, table)` pairs the doc's retention table lists: rows of a Markdown table
/// whose first two cells are a service and a table name in backticks.
fn documented(doc: &str) -> BTreeSet<(String, String)> {
    doc.lines()
        .filter_map(|line| {
            let mut cells = line.trim().strip_prefix('|')?.split('|').map(str::trim);
            let service = cells.next()?;
            let table = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            SERVICES
                .contains(&service)
                .then(|| (service.to_owned(), table.to_owned()))
        })
        .collect()
}

/// The name a table is documented under: a time partition of telemetry's events
/// (`events_p2026_12`, PostgreSQL only) under its parent's row, `events_p*`.
fn documented_as(table: &str) -> String {
    match table.strip_prefix("events_p") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => "events_p*".to_owned(),
        _ => table.to_owned(),
    }
}

#[tokio::test]
async fn every_table_of_every_service_has_a_retention_rule_in_the_docs() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/retention.md"))?;
    let listed = documented(&doc);
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_transfers::Transfers)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_rights::Rights)
        .with(pdm_retention::Retention)
        .with(pdm_incidents::Incidents)
        .start()
        .await?;
    let mut found: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for service in SERVICES {
        let db = mesh.connect_db(service).await?;
        found.insert(service, tables(&db).await?);
    }
    let missing: Vec<String> = found
        .iter()
        .flat_map(|(service, tables)| {
            tables
                .iter()
                .map(|t| ((*service).to_owned(), documented_as(t)))
                .filter(|key| !listed.contains(key))
                .map(|(s, t)| format!("{s}: {t}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "tables without a row in docs/retention.md: {missing:?}"
    );
    // And no row for a table that no longer exists (a stale rule misleads as much).
    let stale: Vec<String> = listed
        .iter()
        .filter(|(s, t)| {
            found
                .get(s.as_str())
                .is_some_and(|tables| !tables.iter().any(|x| &documented_as(x) == t))
        })
        // Partitions exist once events of their day arrive.
        .filter(|(_, t)| t != "events_p*")
        .map(|(s, t)| format!("{s}: {t}"))
        .collect();
    assert!(
        stale.is_empty(),
        "rows in docs/retention.md for tables no migrator creates: {stale:?}"
    );
    Ok(())
}
