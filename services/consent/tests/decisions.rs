//! Processing decisions: consent, withdrawal, legal bases per region ("Consent to be
//! obtained", "Legal Basis for Processing (For UK/EEA/Swiss Users)").

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{self as pb, Reason, Source},
};
use pdm_testkit::{TestMesh, assert::field_violations, fake::Person};
use tonic::Code;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

fn grant(subject: &str, purpose: &str) -> pb::GrantConsentRequest {
    pb::GrantConsentRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        source: Source::WebForm as i32,
        policy_version: "2024-06-28".to_owned(),
        text_hash: TEXT_HASH.to_owned(),
        actor: "web-signup".to_owned(),
        occurred_at: None,
    }
}

fn check(subject: &str, purpose: &str) -> pb::CheckProcessingRequest {
    pb::CheckProcessingRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn consent_allows_and_a_withdrawal_is_seen_by_the_very_next_check() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    let d = consent
        .check_processing(check(&subject, "product_analytics"))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::NoConsent as i32);
    assert_eq!(d.legal_basis, LegalBasis::Consent as i32);

    consent
        .grant_consent(grant(&subject, "product_analytics"))
        .await?;
    let d = consent
        .check_processing(check(&subject, "product_analytics"))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::ConsentGiven as i32);

    consent
        .withdraw_consent(pb::WithdrawConsentRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            source: Source::WebForm as i32,
            actor: "settings-page".into(),
        })
        .await?;
    let d = consent
        .check_processing(check(&subject, "product_analytics"))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(
        !d.allowed,
        "withdrawal is effective for the very next check"
    );
    assert_eq!(d.reason, Reason::Withdrawn as i32);

    let history = consent
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(history.entries.len(), 2);
    assert_eq!(history.entries[0].text_hash, TEXT_HASH);
    assert_eq!(history.entries[0].policy_version, "2024-06-28");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn consent_for_a_purpose_that_does_not_rest_on_consent_is_refused() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let subject = mesh.sign_up(&Person::new()).await?;
    let err = mesh
        .consent()
        .grant_consent(grant(&subject, "service_provision"))
        .await
        .expect_err("contract");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("LEGAL_BASIS_CONTRACT"),
        "{}",
        err.message()
    );
    Ok(())
}

#[tokio::test]
async fn unknown_subjects_and_purposes() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let nobody = uuid::Uuid::now_v7().to_string();
    let d = consent
        .check_processing(check(&nobody, "support"))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(d.reason, Reason::UnknownSubject as i32);
    let subject = mesh.sign_up(&Person::new()).await?;
    let d = consent
        .check_processing(check(&subject, "astrology"))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(d.reason, Reason::UnknownPurpose as i32);
    let err = consent
        .grant_consent(grant(&nobody, "marketing_email"))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = consent
        .grant_consent(pb::GrantConsentRequest {
            purpose: "astrology".into(),
            source: 99,
            text_hash: "xyz".into(),
            ..grant("nope", "x")
        })
        .await
        .expect_err("bad");
    assert_eq!(
        field_violations(&err),
        ["subject_id", "purpose", "source", "text_hash"]
    );
    Ok(())
}
