//! `pdm incidents open | show | assess | notify-authority | close | overdue | list | dpo`
//! (and `affected | notify-people`)
//! against a running incidents service (issue 21): the privacy team records a breach,
//! assesses it (only the values given change, against the version read), records what it
//! sent to each authority, sees what is overdue, and closes it; bad input is refused naming
//! the fields.

mod cli;

use std::path::Path;

use chrono::{Duration, SecondsFormat, Utc};
use pdm_testkit::{Mesh, TestMesh};

async fn pdm_incidents(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    cli::pdm(mesh, dir, "incidents", args).await
}

fn ago(hours: i64) -> String {
    (Utc::now() - Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Opens an incident aware `hours` ago; its id.
async fn open(mesh: &Mesh, dir: &Path, hours: i64, title: &str) -> anyhow::Result<String> {
    let (detected, aware, window) = (ago(hours + 1), ago(hours), ago(hours + 48));
    let (ok, text) = pdm_incidents(
        mesh,
        dir,
        &[
            "open",
            "--title",
            title,
            "--detected-at",
            &detected,
            "--aware-at",
            &aware,
            "--description",
            "A partner export went to the wrong recipient.",
            "--nature",
            "confidentiality",
            "--category",
            "account.profile,support.ticket",
            "--window-start",
            &window,
            "--subjects",
            "312",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("opened "))
        .map(str::to_owned);
    Ok(id.unwrap_or_else(|| panic!("no id in {text}")))
}

#[tokio::test]
async fn pdm_incidents_records_assesses_notifies_and_closes_a_breach() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(pdm_incidents::Incidents)
        .start()
        .await?;
    let d = dir.path();

    let id = open(&mesh, d, 1, "Export sent to the wrong partner").await?;
    let (ok, text) = pdm_incidents(&mesh, d, &["show", &id]).await?;
    assert!(ok, "{text}");
    assert!(text.contains("Export sent to the wrong partner"), "{text}");
    assert!(
        text.contains("gdpr") && text.contains("uk_gdpr") && text.contains("pending"),
        "{text}"
    );

    // Only the values given change.
    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &[
            "assess",
            &id,
            "--risk",
            "high",
            "--risk-reasoning",
            "Contact details exposed.",
            "--actor",
            "analyst",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("version 2") && text.contains("risk:         high"),
        "{text}"
    );
    assert!(text.contains("people:       ~312"), "{text}");

    // A breach we became aware of four days ago and never notified is overdue.
    let late = open(&mesh, d, 96, "Backup bucket left public").await?;
    let (ok, text) = pdm_incidents(&mesh, d, &["overdue"]).await?;
    assert!(ok, "{text}");
    assert!(text.contains(&late) && !text.contains(&id), "{text}");

    // Closing before the authority has its final notification is refused.
    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &["close", &id, "--reason", "done", "--actor", "dpo-office"],
    )
    .await?;
    assert!(!ok && text.contains("final notification"), "{text}");
    for (regime, phase) in [
        ("gdpr", "initial"),
        ("gdpr", "final"),
        ("uk_gdpr", "initial"),
        ("uk_gdpr", "final"),
    ] {
        let (ok, text) = pdm_incidents(
            &mesh,
            d,
            &[
                "notify-authority",
                &id,
                "--regime",
                regime,
                "--phase",
                phase,
                "--content",
                "What happened, when, the people and records concerned.",
                "--reference",
                "CASE-1",
                "--actor",
                "dpo-office",
            ],
        )
        .await?;
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("recorded {phase} notification")),
            "{text}"
        );
    }
    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &[
            "close",
            &id,
            "--reason",
            "Authorities informed; partner deleted the file.",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(ok && text.contains("closed"), "{text}");
    let (ok, text) = pdm_incidents(&mesh, d, &["show", &id, "--history"]).await?;
    assert!(ok, "{text}");
    for change in ["opened", "assessed", "authority-notified", "closed"] {
        assert!(text.contains(change), "{change}: {text}");
    }
    let (ok, text) = pdm_incidents(&mesh, d, &["list", "--open"]).await?;
    assert!(ok && text.contains(&late) && !text.contains(&id), "{text}");
    let (ok, text) = pdm_incidents(&mesh, d, &["dpo"]).await?;
    assert!(
        ok && text.contains("privacy@digitalapicraft.com") && text.contains("72 h"),
        "{text}"
    );

    // Bad input: the fields are named, nothing is opened.
    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &[
            "open",
            "--title",
            "",
            "--description",
            "x",
            "--nature",
            "integrity",
            "--category",
            "Bad Key",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(!ok, "{text}");
    for field in [
        "details.title",
        "details.detected_at",
        "details.aware_at",
        "details.data_categories[0]",
        "details.window_start",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
    let (_, text) = pdm_incidents(&mesh, d, &["list"]).await?;
    assert_eq!(text.lines().count(), 3, "header and two incidents: {text}");
    Ok(())
}

/// `pdm incidents affected` and `notify-people` (issue 21, Art. 34): the people a breach
/// affected are found and listed with a count, then each told once; a second run tells
/// nobody again.
#[tokio::test]
async fn pdm_incidents_finds_the_people_affected_and_tells_each_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_rights::Rights)
        .with(pdm_incidents::Incidents)
        .setting("rights.retention", "false")
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        .start()
        .await?;
    // One person in the UK, one in the US: the list shows each one's region.
    for region in [
        pdm_proto::common::v1::Region::Uk,
        pdm_proto::common::v1::Region::Us,
    ] {
        mesh.sign_up(&pdm_testkit::fake::Person {
            region,
            ..pdm_testkit::fake::Person::new()
        })
        .await?;
    }
    let d = dir.path();
    let id = open(&mesh, d, 1, "Export sent to the wrong partner").await?;
    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &[
            "assess",
            &id,
            "--service",
            "identity",
            "--risk",
            "high",
            "--risk-reasoning",
            "names and emails",
            "--consequences",
            "phishing emails",
            "--measures",
            "the partner deleted the file",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    let (ok, text) = pdm_incidents(&mesh, d, &["affected", &id, "--find"]).await?;
    assert!(ok, "{text}");
    assert!(text.contains("2 people affected: uk 1, us 1"), "{text}");
    assert_eq!(text.matches("not told").count(), 2, "{text}");
    assert!(text.contains("REGION"), "{text}");

    let (ok, text) = pdm_incidents(
        &mesh,
        d,
        &[
            "notify-people",
            &id,
            "--what-happened",
            "A file with your email went to the wrong partner.",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("told 2 of 2 (0 found told already), 0 to go"),
        "{text}"
    );
    let (ok, text) =
        pdm_incidents(&mesh, d, &["notify-people", &id, "--actor", "dpo-office"]).await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("told 0 of 2 (0 found told already), 0 to go"),
        "{text}"
    );
    let (ok, text) = pdm_incidents(&mesh, d, &["affected", &id, "--count"]).await?;
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "2 people affected: uk 1, us 1");
    let (ok, text) = pdm_incidents(&mesh, d, &["affected", &id]).await?;
    assert!(ok && !text.contains("not told"), "{text}");
    Ok(())
}
