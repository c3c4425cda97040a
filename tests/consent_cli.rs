//! `pdm consent withdraw` against a running mesh: "you can withdraw your consent at any
//! time" — when the request reaches the privacy team by email, they record it; the ledger
//! names the source (a privacy request) and who recorded it, and the very next check
//! is denied.

mod cli;

use std::path::Path;

use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        CheckProcessingRequest, GetConsentHistoryRequest, GrantConsentRequest, Reason, Source,
    },
};
use pdm_testkit::{Mesh, TestMesh, fake::Person};

/// Runs `pdm consent <args>` as the privacy team against the mesh's consent service.
async fn pdm_consent(mesh: &Mesh, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    cli::pdm(mesh, dir, "consent", args).await
}

async fn grant(mesh: &Mesh, subject: &str, purpose: &str) -> anyhow::Result<()> {
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".into(),
            actor: "signup-form".into(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

async fn reason(mesh: &Mesh, subject: &str, purpose: &str) -> anyhow::Result<Reason> {
    let d = mesh
        .consent()
        .check_processing(CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .unwrap_or_default();
    Ok(Reason::try_from(d.reason).unwrap_or_default())
}

#[tokio::test]
async fn you_can_withdraw_your_consent_by_writing_to_the_privacy_team() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;
    for purpose in ["marketing_email", "product_analytics", "testimonials"] {
        grant(&mesh, &subject, purpose).await?;
    }

    let (ok, out) = pdm_consent(
        &mesh,
        dir.path(),
        &["withdraw", &subject, "marketing_email", "--actor", "jd"],
    )
    .await?;
    assert!(ok, "{out}");
    assert!(out.contains("withdrawn: marketing_email"), "{out}");
    assert_eq!(
        reason(&mesh, &subject, "marketing_email").await?,
        Reason::Withdrawn
    );
    assert_eq!(
        reason(&mesh, &subject, "product_analytics").await?,
        Reason::ConsentGiven,
        "only what was asked"
    );

    // "Withdraw everything I agreed to."
    let (ok, out) = pdm_consent(
        &mesh,
        dir.path(),
        &["withdraw", &subject, "--all", "--actor", "jd"],
    )
    .await?;
    assert!(ok, "{out}");
    for purpose in ["product_analytics", "testimonials"] {
        assert!(out.contains(&format!("withdrawn: {purpose}")), "{out}");
        assert_eq!(reason(&mesh, &subject, purpose).await?, Reason::Withdrawn);
    }

    // The proof names how the withdrawal reached us and who recorded it.
    let history = mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            after_sequence: 0,
            page_size: 100,
        })
        .await?
        .into_inner()
        .entries;
    let by_team: Vec<_> = history
        .iter()
        .filter(|e| e.source == Source::PrivacyRequest as i32)
        .collect();
    assert_eq!(by_team.len(), 3, "{history:?}");
    assert!(by_team.iter().all(|e| e.actor == "privacy-team:jd"));

    // Nothing left in force: said so, and nothing written.
    let (ok, out) = pdm_consent(
        &mesh,
        dir.path(),
        &["withdraw", &subject, "--all", "--actor", "jd"],
    )
    .await?;
    assert!(ok, "{out}");
    assert!(out.contains("nothing to withdraw"), "{out}");

    // A purpose that is not in the catalogue is refused by the service, by name.
    let (ok, out) = pdm_consent(
        &mesh,
        dir.path(),
        &["withdraw", &subject, "no_such_purpose", "--actor", "jd"],
    )
    .await?;
    assert!(!ok, "{out}");
    assert!(out.contains("no_such_purpose"), "{out}");
    Ok(())
}
