//! Account deletion from the identity service goes through the rights service, so it
//! reaches every service (policy: account deletion steps 4 and 5).

use std::time::Duration;

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    consent::v1::{GetConsentHistoryRequest, GrantConsentRequest, Source},
    identity::v1::{DeleteAccountRequest, DeletionReason, GetAccountRequest},
    rights::v1::{
        GetReportRequest, GetRequestRequest, ListRequestsRequest, ReasonCount, RequestKind, Status,
        rights_service_client::RightsServiceClient,
    },
};
use pdm_rights::Rights;
use pdm_telemetry::Telemetry;
use pdm_testkit::{TestMesh, assert::rows_where, fake::Person};
use pdm_tls::identity::Caller;
use pdm_transfers::Transfers;
use tonic::Code;

#[tokio::test]
async fn delete_account_erases_the_subject_everywhere_through_the_rights_service()
-> anyhow::Result<()> {
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
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "c".repeat(64),
            actor: "newsletter-form".into(),
            occurred_at: None,
        })
        .await?;

    let wrong = mesh
        .identity()
        .delete_account(DeleteAccountRequest {
            subject_id: subject.clone(),
            password: "not my password, sorry".into(),
            reason: DeletionReason::PrivacyConcerns as i32,
            request_id: String::new(),
        })
        .await
        .expect_err("wrong password");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(
        mesh.identity()
            .get_account(GetAccountRequest {
                subject_id: subject.clone()
            })
            .await
            .is_ok()
    );
    let open = mesh
        .rights()
        .list_requests(ListRequestsRequest {
            status: Status::VerificationRequired as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(
        open.requests.is_empty(),
        "a failed deletion leaves no request waiting"
    );

    let receipt = mesh
        .identity()
        .delete_account(DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: DeletionReason::PrivacyConcerns as i32,
            request_id: "my-deletion-1".into(),
        })
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert!(receipt.key_destroyed);
    assert!(
        mesh.identity()
            .get_account(GetAccountRequest {
                subject_id: subject.clone()
            })
            .await
            .is_err()
    );

    // The rights request reaches consent too, and completes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = mesh
            .rights()
            .list_requests(ListRequestsRequest {
                kind: RequestKind::Erasure as i32,
                status: Status::Completed as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        if done
            .requests
            .iter()
            .any(|r| r.request_id == receipt.request_id)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the erasure request did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Issue 16: the reason the subject gave reaches the erasure records (identity's and
    // the rights request) and the privacy team's yearly report.
    let mut admin = RightsServiceClient::new(mesh.channel_as("rights", &Caller::Admin)?);
    let request = admin
        .get_request(GetRequestRequest {
            request_id: receipt.request_id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(request.deletion_reason, "DELETION_REASON_PRIVACY_CONCERNS");
    let identity_db = mesh.connect_db("identity").await?;
    assert_eq!(
        rows_where(
            &identity_db,
            "deletion_reasons",
            "reason",
            "DELETION_REASON_PRIVACY_CONCERNS"
        )
        .await,
        1
    );
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let report = admin
        .get_report(GetReportRequest { year })
        .await?
        .into_inner();
    let erasures = report
        .kinds
        .iter()
        .find(|k| k.kind == RequestKind::Erasure as i32)
        .expect("erasures in the report");
    assert_eq!(
        erasures.deletion_reasons,
        [ReasonCount {
            reason: "DELETION_REASON_PRIVACY_CONCERNS".into(),
            count: 1
        }]
    );
    let history = mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(
        history.entries.is_empty(),
        "consent history is pseudonymised"
    );

    // A retry with the same request id gets the same receipt.
    let again = mesh
        .identity()
        .delete_account(DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: DeletionReason::PrivacyConcerns as i32,
            request_id: "my-deletion-1".into(),
        })
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(again.request_id, receipt.request_id);
    assert_eq!(again.erased, receipt.erased);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

/// A request id already used for another person's deletion is the caller's mistake: it
/// answers `INVALID_ARGUMENT` on `request_id`, never `UNAVAILABLE` (a well-behaved client
/// would retry that forever).
#[tokio::test]
async fn a_request_id_used_for_another_subject_is_refused_not_unavailable() -> anyhow::Result<()> {
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
    let (first, second) = (Person::new(), Person::new());
    let a = mesh.sign_up(&first).await?;
    let b = mesh.sign_up(&second).await?;
    let request_id = format!("close-{}", uuid::Uuid::now_v7());
    let delete = |subject: &str, person: &Person| DeleteAccountRequest {
        subject_id: subject.to_owned(),
        password: person.password.clone(),
        reason: DeletionReason::NoLongerNeeded as i32,
        request_id: request_id.clone(),
    };
    mesh.identity().delete_account(delete(&a, &first)).await?;
    for _ in 0..2 {
        let err = mesh
            .identity()
            .delete_account(delete(&b, &second))
            .await
            .expect_err("the id is taken");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(pdm_testkit::assert::field_violations(&err), ["request_id"]);
    }
    // The second person's account is untouched.
    mesh.identity()
        .get_account(GetAccountRequest { subject_id: b })
        .await?;
    Ok(())
}
