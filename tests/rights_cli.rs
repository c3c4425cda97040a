//! `pdm rights deny | children | confirm-child | show` against a running mesh (issue 15): a
//! refusal gives its reasons and the right to complain ("GDPR Data Protection Rights"); a
//! report of a child's data is confirmed by the privacy team and its erasure is due in 72
//! hours ("Our policy towards the Children": "we will do our best efforts to promptly
//! remove such information from our records"); `show` says how the delivery of each
//! message to the subject went (issue 16), without an address, and after an erasure until
//! when key store backups can still open the erased data.

mod cli;

use std::path::Path;

use pdm_proto::rights::v1::{
    Credential, DataSubjectRequest, Regime, ReportChildRequest, RequestKind, SubmitRequestRequest,
    credential,
};
use pdm_testkit::{Mesh, TestMesh, fake::Person};

/// Runs `pdm rights <args>` as the privacy team against the mesh's rights service.
async fn pdm_rights(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    cli::pdm(mesh, dir, "rights", args).await
}

/// Submits an erasure for `subject` under UK GDPR, proved by `password` (None: it waits
/// for verification).
async fn erasure(
    mesh: &Mesh,
    subject: String,
    password: Option<&str>,
) -> anyhow::Result<DataSubjectRequest> {
    Ok(mesh
        .rights()
        .submit_request(SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            regime: Regime::UkGdpr as i32,
            subject_id: subject,
            credential: password.map(|p| Credential {
                credential: Some(credential::Credential::Password(p.to_owned())),
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .unwrap_or_default())
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
    let waiting = erasure(&mesh, subject, None).await?;
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

#[tokio::test]
async fn pdm_rights_show_tells_whether_the_subject_was_sent_the_message() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(dir.path()).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let waiting = erasure(&mesh, subject, None).await?;
    let (ok, text) = pdm_rights(
        &mesh,
        dir.path(),
        &[
            "deny",
            &waiting.request_id,
            "--reason",
            "no reply to our letters",
        ],
    )
    .await?;
    assert!(ok, "{text}");
    // The refusal goes to the subject's address on the account; `show` follows its delivery.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let (ok, text) = pdm_rights(&mesh, dir.path(), &["show", &waiting.request_id]).await?;
        assert!(ok, "{text}");
        let sent = text
            .lines()
            .any(|l| l.starts_with("refused") && l.split_whitespace().nth(1) == Some("sent"));
        if sent {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "never sent: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        text.contains("MESSAGE") && text.contains("DELIVERY") && text.contains("LAST ERROR"),
        "{text}"
    );
    assert!(!text.contains(&person.email), "no address shown: {text}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn pdm_rights_show_says_until_when_key_backups_can_bring_an_erasure_back()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(dir.path()).await?;
    let (person, subject) = mesh.person_with_data().await?;
    let request = erasure(&mesh, subject, Some(&person.password)).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let (ok, text) = pdm_rights(&mesh, dir.path(), &["show", &request.request_id]).await?;
        assert!(ok, "{text}");
        if text.contains("status completed") {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never completed: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // The default crypto.key_backup_days: 35 days after the erasure.
    let gone = (chrono::Utc::now() + chrono::Duration::days(35))
        .format("%Y-%m-%d")
        .to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("keys destroyed"))
        .unwrap_or_else(|| panic!("no key backup line: {text}"));
    assert!(line.contains(&gone), "{line}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
