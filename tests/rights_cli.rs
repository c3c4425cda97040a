//! `pdm rights deny | children | confirm-child` against a running mesh (issue 15): a
//! refusal gives its reasons and the right to complain ("GDPR Data Protection Rights"); a
//! report of a child's data is confirmed by the privacy team and its erasure is due in 72
//! hours ("Our policy towards the Children": "we will do our best efforts to promptly
//! remove such information from our records").

mod cli;

use std::path::Path;

use pdm_proto::rights::v1::{Regime, ReportChildRequest, RequestKind, SubmitRequestRequest};
use pdm_testkit::{Mesh, TestMesh, fake::Person};

/// Runs `pdm rights <args>` as the privacy team against the mesh's rights service.
async fn pdm_rights(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    cli::pdm(mesh, dir, "rights", args).await
}

async fn mesh(dir: &Path) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_transfers::Transfers)
        .with(pdm_rights::Rights)
        .setting("rights.retention", "false")
        .setting("rights.outbox_file", dir.join("outbox.jsonl").display())
        .start()
        .await
}

#[tokio::test]
async fn pdm_rights_deny_gives_the_reasons_and_the_right_to_lodge_a_complaint() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let mesh = mesh(dir.path()).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    // Waiting for verification: open.
    let waiting = mesh
        .rights()
        .submit_request(SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            regime: Regime::UkGdpr as i32,
            subject_id: subject,
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    let (ok, text) = pdm_rights(
        &mesh,
        dir.path(),
        &[
            "deny",
            &waiting.request_id,
            "--reason",
            "we could not verify who made the request",
            "--reason",
            "no reply to our two letters",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    assert!(text.contains("status denied"), "{text}");
    assert!(
        text.contains("- we could not verify who made the request")
            && text.contains("- no reply to our two letters"),
        "{text}"
    );
    assert!(
        text.contains(
            "You have the right to lodge a complaint with the Information Commissioner's Office"
        ),
        "{text}"
    );
    // Without a reason, nothing is asked of the service.
    let (ok, text) = pdm_rights(&mesh, dir.path(), &["deny", &waiting.request_id]).await?;
    assert!(!ok, "{text}");
    assert!(text.contains("--reason"), "{text}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn pdm_rights_confirm_child_we_will_do_our_best_efforts_to_promptly_remove_such_information()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(dir.path()).await?;
    let child = Person::new();
    let subject = mesh.sign_up(&child).await?;
    let report = mesh
        .rights()
        .report_child(ReportChildRequest {
            subject_id: subject.clone(),
            reporter_contact: "guardian.of.a.pupil@example.org".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .report
        .unwrap_or_default();
    let (ok, text) = pdm_rights(&mesh, dir.path(), &["children", "--waiting"]).await?;
    assert!(ok, "{text}");
    assert!(
        text.contains(&report.report_id)
            && text.contains("guardian.of.a.pupil@example.org")
            && text.contains(&subject),
        "{text}"
    );
    let (ok, text) = pdm_rights(
        &mesh,
        dir.path(),
        &[
            "confirm-child",
            &report.report_id,
            "--verified-by",
            "DPO-CHILD-2026-3",
            "--regime",
            "uk-gdpr",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    assert!(text.contains("due in 72 hours"), "{text}");
    assert!(text.contains("kind erasure"), "{text}");
    let (ok, text) = pdm_rights(&mesh, dir.path(), &["children", "--waiting"]).await?;
    assert!(ok, "{text}");
    assert!(!text.contains(&report.report_id), "confirmed: {text}");
    let mut secrets = child.secrets();
    secrets.push(("reporter", "guardian.of.a.pupil@example.org"));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}
