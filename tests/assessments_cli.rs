//! `pdm assessments record | show | list | overdue` against running incidents and transfers
//! services (issue 21, policy "Data Protection Officer": the DPO "advises on impact
//! assessments"): the privacy team records a DPIA, revises it (only the values given
//! change, against the version read), sees every version, the register, and the reviews
//! overdue, its own DPIAs and the transfer impact assessments of the transfers register;
//! bad input is refused naming the field.

use std::{path::Path, process::Command};

use chrono::{Duration, SecondsFormat, Utc};
use pdm_proto::transfers::v1::{
    self as tpb, MechanismKind, PartyRole, RecipientRole, Regime, TiaOutcome,
};
use pdm_runtime::convert::timestamp;
use pdm_testkit::{Mesh, TestMesh};

/// Runs `pdm assessments <args>` as the privacy team against the mesh's incidents service.
async fn pdm_assessments(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let addr = mesh
        .addr("incidents")
        .ok_or_else(|| anyhow::anyhow!("incidents is not running"))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir)
        .env(
            "PDM__SERVICES__INCIDENTS__ENDPOINT",
            format!("http://{addr}"),
        )
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .arg("assessments")
        .args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let text = format!(
        "{}{}",
        String::from_utf8(output.stdout)?,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

fn days_from_now(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A transfer mechanism with a TIA whose review was due ten days ago.
async fn overdue_tia(mesh: &Mesh) -> anyhow::Result<()> {
    let recipient = mesh
        .transfers()
        .register_recipient(tpb::RegisterRecipientRequest {
            recipient: Some(tpb::Recipient {
                key: "hosting-in".to_owned(),
                name: "Hosting IN".to_owned(),
                role: RecipientRole::Processor as i32,
                country: "IN".to_owned(),
                purposes: vec!["service_provision".to_owned()],
                data_categories: vec!["account.profile".to_owned()],
                contract_reference: "DPA-hosting-in".to_owned(),
                contract_date: "2024-01-10".to_owned(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .ok_or_else(|| anyhow::anyhow!("no recipient"))?;
    mesh.transfers()
        .record_mechanism(tpb::RecordMechanismRequest {
            mechanism: Some(tpb::Mechanism {
                recipient_id: recipient.recipient_id,
                kind: MechanismKind::EuScc as i32,
                regimes: vec![Regime::Eu as i32],
                scc_module: 2,
                exporter_role: PartyRole::Controller as i32,
                signed_on: "2024-01-10".to_owned(),
                parties: vec!["DigitalAPICraft".to_owned(), "Hosting IN".to_owned()],
                valid_from: Some(timestamp(Utc::now() - Duration::days(400))),
                review_due: Some(timestamp(Utc::now() - Duration::days(10))),
                status: tpb::MechanismStatus::Active as i32,
                tia: Some(tpb::TransferImpactAssessment {
                    reference: "TIA-IN-7".to_owned(),
                    assessed_on: "2024-01-05".to_owned(),
                    outcome: TiaOutcome::Adequate as i32,
                    supplementary_measures: Vec::new(),
                }),
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn pdm_assessments_records_revises_lists_and_shows_the_overdue_reviews() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(pdm_transfers::Transfers)
        .with(pdm_incidents::Incidents)
        .start()
        .await?;
    let d = dir.path();
    let next_year = days_from_now(365);
    let common = [
        "--processing",
        "Crash reports with the device facts, kept for 12 months.",
        "--purpose",
        "crash_reporting",
        "--category",
        "telemetry.crash",
        "--risk",
        "A crash payload may hold what the person typed.",
        "--measure",
        "Payloads sealed under the subject's key.",
        "--advice",
        "Proceed with the payloads sealed.",
        "--actor",
        "dpo-office",
    ];

    let mut args = vec![
        "record",
        "--title",
        "Crash reports",
        "--residual-risk",
        "low",
        "--outcome",
        "proceed-with-measures",
        "--next-review",
        &next_year,
    ];
    args.extend(common);
    let (ok, text) = pdm_assessments(&mesh, d, &args).await?;
    assert!(ok, "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("recorded "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no id in {text}"));

    // Only the values given change; the revision is made against the version read.
    let (ok, text) = pdm_assessments(
        &mesh,
        d,
        &[
            "record",
            "--id",
            &id,
            "--residual-risk",
            "medium",
            "--actor",
            "dpo-office",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    assert!(text.contains("version 2"), "{text}");
    let (ok, text) = pdm_assessments(&mesh, d, &["show", &id, "--history"]).await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("Crash reports") && text.contains("medium"),
        "{text}"
    );
    assert!(
        text.contains("VERSION") && text.lines().any(|l| l.starts_with("2 ")),
        "{text}"
    );

    // Art. 36(1): a high residual risk may not simply proceed; the field is named.
    let mut args = vec![
        "record",
        "--title",
        "Profiling for ads",
        "--residual-risk",
        "high",
        "--outcome",
        "proceed",
        "--next-review",
        &next_year,
    ];
    args.extend(common);
    let (ok, text) = pdm_assessments(&mesh, d, &args).await?;
    assert!(!ok, "{text}");
    assert!(text.contains("details.outcome"), "{text}");

    // A DPIA carried over with its review lapsed, and a TIA due for review: both overdue.
    let assessed = days_from_now(-400);
    let lapsed = days_from_now(-35);
    let mut args = vec![
        "record",
        "--title",
        "Support tickets",
        "--residual-risk",
        "low",
        "--outcome",
        "proceed",
        "--assessed-at",
        &assessed,
        "--next-review",
        &lapsed,
        "--late-review-reason",
        "Carried over from the 2024 register.",
    ];
    args.extend(common);
    let (ok, text) = pdm_assessments(&mesh, d, &args).await?;
    assert!(ok, "{text}");
    assert!(text.contains("(overdue)"), "{text}");
    overdue_tia(&mesh).await?;

    let (ok, text) = pdm_assessments(&mesh, d, &["list"]).await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("Crash reports") && text.contains("Support tickets"),
        "{text}"
    );
    assert!(!text.contains("Profiling for ads"), "{text}");
    let (ok, text) = pdm_assessments(&mesh, d, &["overdue"]).await?;
    assert!(ok, "{text}");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with("dpia") && rows[0].contains("Support tickets"),
        "{text}"
    );
    assert!(
        rows[1].starts_with("tia") && rows[1].contains("TIA-IN-7 (Hosting IN)"),
        "{text}"
    );
    Ok(())
}
