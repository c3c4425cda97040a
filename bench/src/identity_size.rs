//! `scale.size.identity`: identity's database size per account (issue 19, docs/scale.md),
//! on PostgreSQL: accounts are signed up through the API (every field sealed, the email's
//! blind index, the password's argon2id hash, the link with the calling client, the
//! subject's key), and identity's schema and its key store's (`identity_keys`, beside the
//! data when no `key_store_url` is set; tables, indexes, TOAST) are measured before and
//! after. The sign-up rate is reported too: argon2id bounds it, and it is why the consent
//! growth benchmark copies its subjects in SQL instead.

use std::time::Instant;

use pdm_runtime::sea_orm::sqlx;
use serde_json::{Value, json};

use super::{figures::round1, harness, postgres};

/// Accounts signed up between the two measurements.
const ACCOUNTS: usize = 500;

/// Runs the measurement, or reports it skipped when PostgreSQL is unreachable.
pub async fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Value>> {
    if !wanted("scale.size.identity") {
        return Ok(Vec::new());
    }
    postgres::on_fresh_database("scale.size.identity", async |database| {
        let mesh = harness::start(
            &["identity"],
            vec![("database.url".to_owned(), database.url().to_owned())],
        )
        .await?;
        let pool = database.connect(1).await?;
        let pg = pool.get_postgres_connection_pool().clone();
        let measured = measure(&mesh, &pg).await;
        pool.close().await.ok();
        harness::stop(mesh).await;
        Ok(vec![measured?])
    })
    .await
}

/// Identity's size before and after [`ACCOUNTS`] sign-ups.
async fn measure(mesh: &pdm_testkit::Mesh, pg: &sqlx::PgPool) -> anyhow::Result<Value> {
    // The first account creates what every later one shares (the client's row).
    harness::sign_up(mesh, 1).await?;
    let before = (
        schema_bytes(pg, "identity").await?,
        schema_bytes(pg, "identity_keys").await?,
    );
    let started = Instant::now();
    harness::sign_up(mesh, ACCOUNTS).await?;
    let elapsed = started.elapsed();
    let after = (
        schema_bytes(pg, "identity").await?,
        schema_bytes(pg, "identity_keys").await?,
    );
    let per_account = |before: i64, after: i64| round1((after - before) as f64 / ACCOUNTS as f64);
    Ok(json!({
        "name": "scale.size.identity",
        "database": "postgresql",
        "accounts_signed_up": ACCOUNTS,
        "bytes_per_account": per_account(before.0 + before.1, after.0 + after.1),
        "data_bytes_per_account": per_account(before.0, after.0),
        "key_store_bytes_per_account": per_account(before.1, after.1),
        "identity_mib": round1((after.0 + after.1) as f64 / 1_048_576.0),
        "sign_ups_per_s": round1(ACCOUNTS as f64 / elapsed.as_secs_f64()),
        "note": "one sign-up at a time; argon2id bounds the rate",
    }))
}

/// The tables of `schema` with their indexes and TOAST, in bytes.
async fn schema_bytes(pg: &sqlx::PgPool, schema: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    )
    .bind(schema)
    .fetch_one(pg)
    .await?)
}
