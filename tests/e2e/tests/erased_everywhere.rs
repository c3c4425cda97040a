//! Policy, "If you ever decide to delete your account": "your account and all associated
//! data will be permanently deleted. You will receive an email confirming the deletion."
//! A person with data in every service is erased through the rights service, the
//! confirmation goes out, and then no file under the data directory (every database, its
//! WAL, the key stores, the outbox file), no row and no log line holds any of their
//! values — searched case-insensitively, the email's local part on its own too — while
//! the process runs and again after it stopped.

use std::time::Duration;

use pdm_e2e::{Suite, people};

/// Every form of the person's values a search must not find.
fn needles(person: &people::Person) -> Vec<String> {
    let mut needles: Vec<String> = person.values.iter().map(|v| v.to_lowercase()).collect();
    for value in &person.values {
        if let Some((local, _)) = value.split_once('@') {
            needles.push(local.to_lowercase());
        }
    }
    needles
}

/// Where the needles are: `value in file` for every file under the data directory, and
/// `value in row` for every row when the databases are PostgreSQL's.
async fn found(suite: &Suite, needles: &[String]) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let files = suite.pdm.data_files();
    // On SQLite the key stores are files there too (on PostgreSQL, schemas in the dump).
    anyhow::ensure!(
        suite.pdm.backend().is_postgres()
            || files
                .iter()
                .any(|f| f.to_string_lossy().contains("-keys.db")),
        "no key store among the data files: {files:?}"
    );
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue; // gone since it was listed (a WAL checkpointed away)
        };
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for needle in needles {
            if text.contains(needle.as_str()) {
                found.push(format!("{needle} in {}", file.display()));
            }
        }
    }
    if suite.pdm.backend().is_postgres() {
        let dump = suite
            .pdm
            .backend()
            .dump(&suite.pdm.data_dir())
            .await?
            .to_lowercase();
        for needle in needles {
            for line in dump.lines().filter(|l| l.contains(needle.as_str())) {
                found.push(format!("{needle} in the row {line}"));
            }
        }
    }
    Ok(found)
}

/// Waits until the rights service has no message left to send.
async fn outbox_settled(suite: &Suite) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let rows = suite
            .pdm
            .backend()
            .rows(&suite.pdm.data_dir(), "rights", "outbox", &["status"])
            .await?;
        if !rows.iter().any(|r| r[0] == "pending") {
            anyhow::ensure!(!rows.is_empty(), "no message was sent at all");
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "messages still pending after a minute: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_an_erased_person_is_left_in_any_file_or_row() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let recipient = people::register_recipient(&suite).await?;
    let person = people::person_with_data(&suite, &recipient).await?;
    let bystander = people::person_with_data(&suite, &recipient).await?;
    suite.world.personal.extend(person.values.clone());
    let needles = needles(&person);

    // The search reads what is stored: before the erasure it finds the person's subject
    // id (kept in the clear as a key) in the files. Their values are sealed from the start,
    // so the search after the erasure is what catches a copy left in the clear anywhere.
    let control = found(&suite, &[person.subject.to_lowercase()]).await?;
    anyhow::ensure!(
        !control.is_empty(),
        "the search found not even the subject id"
    );
    let request = people::submit(&suite, "REQUEST_KIND_ERASURE", &person.subject).await?;
    let done = suite.wait_completed(&request).await?;
    anyhow::ensure!(
        done["request"]["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["action"] == "erase")),
        "no erasure tasks: {done}"
    );
    outbox_settled(&suite).await?;

    let running = found(&suite, &needles).await?;
    anyhow::ensure!(running.is_empty(), "while running: {running:#?}");

    suite.pdm.terminate().await?;
    let stopped = found(&suite, &needles).await?;
    anyhow::ensure!(stopped.is_empty(), "after SIGTERM: {stopped:#?}");

    // The bystander's data is still held (sealed): their account reads back after a restart.
    suite.pdm.restart().await?;
    let account = suite
        .ok(
            pdm_e2e::Caller::Client,
            "pdm.identity.v1.IdentityService/GetAccount",
            serde_json::json!({"subjectId": bystander.subject}),
        )
        .await?;
    let email = bystander.values.get(1).cloned().unwrap_or_default();
    anyhow::ensure!(
        account["account"]["email"] == email.as_str(),
        "the bystander's account: {account}"
    );
    suite.finish().await
}
