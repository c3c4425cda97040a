//! The rights facade against a real mesh (identity, consent, telemetry and transfers hold
//! the person's data; rights gathers it): an access request submitted without a
//! credential, verified, watched to COMPLETED and its package downloaded once; bad
//! requests refused with their field violations.

mod support;

use std::time::Duration;

use pdm_client::{
    identity::Credential,
    rights::{NewRequest, Regime, RequestKind, Status, SubjectRequest},
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_rights::Rights;
use pdm_telemetry::Telemetry;
use pdm_testkit::TestMesh;
use pdm_transfers::Transfers;
use support::{bad_fields, client};
use tokio_stream::StreamExt as _;

#[tokio::test]
async fn an_access_request_is_watched_to_completed_and_its_package_downloaded_once()
-> anyhow::Result<()> {
    // The messages to the person go to a file in a directory of the test's own.
    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Rights)
        .setting("rights.retention", "false")
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        .start()
        .await?;
    let (person, subject) = mesh.person_with_data().await?;
    let rights = client(&mesh)?.rights()?;
    let password = Credential::Password(person.password.clone());

    // Submitted without proof: it waits for verification.
    let access = NewRequest {
        subject_id: Some(subject.clone()),
        credential: None,
        client_reference: Some("access-1".to_owned()),
        ..NewRequest::new(RequestKind::Access, Regime::Gdpr, password.clone())
    };
    let submitted = rights.submit(&access).await?;
    assert_eq!(submitted.status, Status::VerificationRequired);
    assert_eq!(submitted.kind, RequestKind::Access);
    assert!(submitted.received_at.is_some() && submitted.due_at.is_some());
    let id = submitted.request_id.clone();
    // The same client reference again: the same request, not a second one.
    assert_eq!(rights.submit(&access).await?.request_id, id);

    let verified = rights.verify(&id, Some(&subject), &password).await?;
    assert_eq!(verified.subject_id.as_deref(), Some(subject.as_str()));
    assert!(verified.verified_at.is_some(), "{verified:?}");

    let mut updates = rights.watch(&id, None).await?;
    let mut seen: Vec<SubjectRequest> = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(update) = updates.next().await {
            let update = update?;
            let closed = update.is_closed();
            seen.push(update);
            if closed {
                break;
            }
        }
        anyhow::Ok(())
    })
    .await;
    anyhow::ensure!(done.is_ok(), "not closed within 60 s: {seen:?}");
    done??;
    let last = seen
        .last()
        .ok_or_else(|| anyhow::anyhow!("the stream ended at once"))?;
    assert_eq!(last.status, Status::Completed, "{last:?}");
    assert!(last.closed_at.is_some() && last.package_expires_at.is_some());
    assert!(
        !last.tasks.is_empty() && last.tasks.iter().all(|t| t.status == "done"),
        "{:?}",
        last.tasks
    );
    let token = last
        .download_token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no download token for the submitter"))?;
    // The token is given once.
    let again = rights.get(&id, None).await?;
    assert_eq!(again.status, Status::Completed);
    assert_eq!(again.download_token, None);

    let export = rights.download_export(&id, &token, None).await?;
    assert!(
        export.content_type.contains("pdm.export.v1"),
        "{}",
        export.content_type
    );
    let package = String::from_utf8(export.bytes)?;
    assert!(package.contains(&subject), "the package names its subject");
    assert!(
        package.contains(&person.email),
        "the package holds the account"
    );
    // A complete download uses the token up.
    assert_eq!(
        bad_fields(rights.download_export(&id, &token, None).await),
        ["download_token"]
    );

    // Bad requests: every bad field named.
    assert_eq!(
        bad_fields(
            rights
                .submit(&NewRequest {
                    subject_id: Some("ada@example.org".to_owned()),
                    ..NewRequest::new(
                        RequestKind::Access,
                        Regime::Unspecified,
                        Credential::Password(String::new()),
                    )
                })
                .await
        ),
        ["credential.password", "regime", "subject_id"]
    );
    assert_eq!(
        bad_fields(
            rights
                .submit(&NewRequest {
                    subject_id: Some(subject.clone()),
                    ..NewRequest::new(RequestKind::Objection, Regime::Gdpr, password.clone())
                })
                .await
        ),
        ["purpose"]
    );
    assert_eq!(
        bad_fields(rights.verify("not-a-request", Some("42"), &password).await),
        ["request_id", "subject_id"]
    );
    Ok(())
}
