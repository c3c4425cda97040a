//! "You will receive an email confirming the deletion": the mailbox file is for
//! development. A rights service on a shared (PostgreSQL) database, or in an environment
//! named production, without an SMTP relay says at start that confirmations would reach
//! nobody; on the default SQLite in development it does not.

mod support;

use pdm_testkit::{Backend, captured_logs};
use support::mesh;

const WARNING: &str = "for development only";

#[tokio::test]
async fn the_mailbox_file_is_for_development_and_a_deployment_is_told_so() -> anyhow::Result<()> {
    let logs = captured_logs();
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let warned = logs.contents().contains(WARNING);
    match mesh.backend() {
        Backend::Postgres => assert!(warned, "no warning on PostgreSQL:\n{}", logs.contents()),
        Backend::Sqlite => assert!(!warned, "a warning on SQLite"),
    }
    drop(mesh);

    // The prod overlay names its environment (otlp.environment): warned on any database.
    let before = logs.contents().len();
    let prod = support::builder(&dir.path().join("prod.jsonl"))
        .setting("otlp.environment", "production")
        .start()
        .await?;
    let contents = logs.contents();
    let since = contents.get(before..).unwrap_or_default();
    assert!(
        since.contains(WARNING),
        "no warning in production:\n{since}"
    );
    drop(prod);
    Ok(())
}
