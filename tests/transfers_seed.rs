//! `pdm transfers …` against a running transfers service: the seed register from the
//! policy ("How we transfer information we collect internationally": offices in the US,
//! the UK and India, main hosting in India, payment, support and advertising partners)
//! loads idempotently, the Art. 30-style register prints as CSV, and the seeded SCCs let
//! an EU transfer to the hosting provider in India go ahead.

use std::{path::Path, process::Command};

use chrono::{TimeZone, Utc};
use pdm_proto::transfers::v1::{
    AuthorizeTransferRequest, ListRecipientsRequest, MechanismKind, Outcome, PartyRole, Regime,
};
use pdm_runtime::ManualClock;
use pdm_testkit::{Mesh, TestMesh};

/// Runs `pdm transfers <args>` with a clean environment that points it at the mesh's
/// transfers service, and returns its standard output; fails on a non-zero exit.
async fn pdm_transfers(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let addr = mesh
        .addr("transfers")
        .ok_or_else(|| anyhow::anyhow!("transfers is not running"))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir)
        .env(
            "PDM__SERVICES__TRANSFERS__ENDPOINT",
            format!("http://{addr}"),
        )
        // As the privacy team: the admin certificate of the mesh's PKI.
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .arg("transfers")
        .args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    // The mesh serves from this process's runtime: wait for the child off it.
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8(output.stdout)?;
    anyhow::ensure!(
        output.status.success(),
        "pdm transfers {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

#[tokio::test]
async fn the_seed_loads_once_prints_as_a_register_and_covers_hosting_in_india() -> anyhow::Result<()>
{
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("date"),
    );
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_transfers::Transfers)
        .clock(clock)
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let first = pdm_transfers(&mesh, dir.path(), &["seed"]).await?;
    assert_eq!(first.trim(), "seeded 9 recipients and 8 new mechanisms");
    let second = pdm_transfers(&mesh, dir.path(), &["seed"]).await?;
    assert_eq!(
        second.trim(),
        "seeded 9 recipients and 0 new mechanisms",
        "seeding again adds nothing"
    );

    let csv = pdm_transfers(&mesh, dir.path(), &["register", "--csv"]).await?;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("recipient,role,country,mechanisms,data_categories,purposes")
    );
    assert_eq!(
        lines.len(),
        10,
        "a header and one row per recipient:\n{csv}"
    );
    let hosting_row = lines
        .iter()
        .find(|l| l.starts_with("Primary hosting provider (India data centres),processor,IN,"))
        .unwrap_or_else(|| panic!("no hosting row in\n{csv}"));
    assert!(
        hosting_row.contains("eu_scc module 2 (EU)"),
        "{hosting_row}"
    );

    let mut transfers = mesh.transfers();
    let hosting = transfers
        .list_recipients(ListRecipientsRequest {
            country: "IN".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .recipients
        .into_iter()
        .find(|r| r.key == "hosting-in")
        .ok_or_else(|| anyhow::anyhow!("hosting-in was not seeded"))?;
    let decision = transfers
        .authorize_transfer(AuthorizeTransferRequest {
            regime: Regime::Eu as i32,
            recipient_id: hosting.recipient_id.clone(),
            data_categories: vec!["account.profile".into(), "telemetry.event".into()],
            purpose: "service_provision".into(),
            exporter_role: PartyRole::Controller as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .ok_or_else(|| anyhow::anyhow!("no decision"))?;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.outcome, Outcome::AllowedMechanism as i32);
    assert_eq!(decision.mechanism_kind, MechanismKind::EuScc as i32);
    Ok(())
}
