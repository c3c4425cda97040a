//! "You will receive an email confirming the deletion": the mailbox file is for
//! development. A rights service on a shared (PostgreSQL) database without an SMTP relay
//! says at start that confirmations would reach nobody; on the default SQLite it does not.

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
    Ok(())
}
