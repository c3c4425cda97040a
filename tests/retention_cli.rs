//! `pdm retention …` against a running mesh: a dry-run purge shows a progress bar, one
//! line per service, and changes nothing; the run is then listed; policies and a
//! subject's schedule print as tables.

use std::{path::Path, process::Command};

use chrono::{Duration, TimeZone, Utc};
use pdm_proto::identity::v1::AuthenticateRequest;
use pdm_runtime::ManualClock;
use pdm_testkit::{Mesh, TestMesh, assert::rows_where, fake::Person};

/// Runs `pdm retention <args>` with a clean environment that points it at the mesh's
/// retention service; returns its exit success and standard output.
async fn pdm_retention(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let addr = mesh
        .addr("retention")
        .ok_or_else(|| anyhow::anyhow!("retention is not running"))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir)
        .env(
            "PDM__SERVICES__RETENTION__ENDPOINT",
            format!("http://{addr}"),
        )
        // As the privacy team: the admin certificate of the mesh's PKI.
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .arg("retention")
        .args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    // The mesh serves from this process's runtime: wait for the child off it.
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        eprintln!(
            "pdm retention {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((output.status.success(), stdout))
}

#[tokio::test]
async fn a_dry_run_purge_shows_progress_and_changes_nothing() -> anyhow::Result<()> {
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("date"),
    );
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_transfers::Transfers)
        .with(pdm_retention::Retention)
        .setting("retention.purge_interval_minutes", 0)
        .clock(clock.clone())
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    mesh.identity()
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?;
    // Sessions are kept 30 days.
    clock.advance(Duration::days(31));

    let (ok, out) = pdm_retention(&mesh, dir.path(), &["purge", "--dry-run"]).await?;
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    for service in ["identity", "consent", "telemetry", "transfers"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with('[') && l.contains(&format!("{service}: ok"))),
            "no progress line for {service}:\n{out}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("[{}] 4/4", "#".repeat(24)))),
        "the bar fills:\n{out}"
    );
    assert!(
        out.contains("identity: ok, 1 would be purged, 0 held"),
        "{out}"
    );
    let summary = lines
        .iter()
        .find(|l| l.starts_with("run "))
        .unwrap_or_else(|| panic!("no summary:\n{out}"));
    assert!(
        summary.contains("completed (dry run): 1 would be purged, 0 held"),
        "{summary}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["identity", "account.session", "1", "0"]),
        "{out}"
    );
    let db = mesh.connect_db("identity").await?;
    assert_eq!(
        rows_where(&db, "sessions", "subject_id", &subject).await,
        1,
        "a dry run deletes nothing"
    );

    let run_id = summary
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let (ok, runs) = pdm_retention(&mesh, dir.path(), &["runs"]).await?;
    assert!(ok);
    assert!(
        runs.lines()
            .any(|l| l.starts_with(&run_id) && l.contains("completed") && l.contains("dry")),
        "{runs}"
    );

    let (ok, policies) = pdm_retention(&mesh, dir.path(), &["policies"]).await?;
    assert!(ok);
    assert!(
        policies.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.starts_with(&[
                "billing.record",
                "account_closed",
                "8y",
                "legal_obligation",
                "1",
                "seed",
            ])
        }),
        "{policies}"
    );

    let (ok, schedule) = pdm_retention(&mesh, dir.path(), &["schedule", &subject]).await?;
    assert!(ok);
    assert!(schedule.starts_with("CATEGORY"), "{schedule}");
    assert!(schedule.contains("account.session"), "{schedule}");

    let (ok, _) = pdm_retention(&mesh, dir.path(), &["schedule", "not-a-subject"]).await?;
    assert!(!ok, "a bad subject id fails");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
