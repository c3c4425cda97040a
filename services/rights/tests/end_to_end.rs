//! Requests end to end across every data-holding service ("How to access and control your
//! information", "GDPR Data Protection Rights", account deletion steps).

mod support;

use pdm_proto::{
    consent::v1::GetConsentHistoryRequest,
    rights::v1::{self as pb, Credential, Regime, RequestKind, Status, credential},
};
use pdm_testkit::fake::Person;
use support::{mesh, password, person_with_data, sent_message, wait_closed};

#[tokio::test]
async fn an_erasure_reaches_every_service_and_the_subject_is_told() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let (person, subject) = person_with_data(&mesh).await?;

    let submitted = mesh
        .rights()
        .submit_request(pb::SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: password(&person),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(submitted.status, Status::InProgress as i32);
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    assert_eq!(done.tasks.len(), 4);
    for t in &done.tasks {
        assert_eq!(t.status, "done", "{t:?}");
        assert!(t.receipt.is_some(), "{t:?}");
    }
    let identity_receipt = done
        .tasks
        .iter()
        .find(|t| t.service == "identity")
        .and_then(|t| t.receipt.clone())
        .expect("receipt");
    assert!(identity_receipt.key_destroyed);

    // Nothing personal is left to find.
    assert!(
        mesh.identity()
            .get_account(pdm_proto::identity::v1::GetAccountRequest {
                subject_id: subject.clone()
            })
            .await
            .is_err()
    );
    let history = mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(history.entries.is_empty());

    // Account deletion, step 5: the confirmation goes out (its text is checked at an SMTP
    // relay in erased_addresses.rs); the mailbox file keeps it sealed, its key destroyed.
    let confirmation = sent_message(
        &mesh,
        &outbox,
        &[&submitted.request_id, r#""topic":"completed""#],
    )
    .await?;
    assert!(confirmation["to"].is_null(), "{confirmation}");
    let file = std::fs::read(&outbox)?;
    assert!(!pdm_testkit::assert::contains(&file, &person.email));
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_access_package_answers_the_six_questions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let submitted = mesh
        .rights()
        .submit_request(pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: password(&person),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    let mut stream = mesh
        .rights()
        .download_export(pb::DownloadExportRequest {
            request_id: submitted.request_id.clone(),
            // The one-time token the client got when it first saw the request completed.
            download_token: done.download_token.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        bytes.extend(chunk.chunk);
    }
    let package: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(package["schema"], "pdm.export.v1");
    let records = package["records"].as_array().expect("records");
    assert!(
        records
            .iter()
            .any(|r| r["category"] == "account.profile"
                && r["data"]["email"] == person.email.as_str())
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r["category"] == "telemetry.event")
            .count(),
        5
    );
    for question in [
        "categories",
        "purposes",
        "recipients",
        "how_long",
        "sources",
    ] {
        assert!(!package["summary"][question].is_null(), "{question}");
    }
    let text = package["human_readable"].as_str().unwrap_or_default();
    assert!(
        text.contains("1. What personal data we hold") && text.contains("6. Where it came from"),
        "{text}"
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_unverified_request_waits_and_reveals_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let wrong = Some(Credential {
        credential: Some(credential::Credential::Password(
            "not the password at all".into(),
        )),
    });
    let mut rights = mesh.rights();
    let existing = rights
        .submit_request(pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: wrong.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    let nobody = rights
        .submit_request(pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: uuid::Uuid::now_v7().to_string(),
            credential: wrong,
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    for r in [&existing, &nobody] {
        assert_eq!(r.status, Status::VerificationRequired as i32);
        assert!(r.subject_id.is_empty() && r.tasks.is_empty());
    }
    let verified = rights
        .verify_request(pb::VerifyRequestRequest {
            request_id: existing.request_id.clone(),
            subject_id: String::new(),
            credential: password(&person),
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(verified.status, Status::InProgress as i32);
    assert_eq!(verified.subject_id, subject);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
