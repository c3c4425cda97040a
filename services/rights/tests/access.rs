//! A request is the business of the person it is about and of whom they asked: the client
//! that submitted it, a caller presenting the subject's live session, and the privacy
//! team. Anyone else hears NOT_FOUND, as for a request that does not exist. The package
//! also needs the request's one-time download token.

mod support;

use pdm_proto::{
    identity::v1::AuthenticateRequest,
    rights::v1::{
        self as pb, Regime, RequestKind, Status, rights_service_client::RightsServiceClient,
    },
};
use pdm_testkit::Mesh;
use pdm_tls::identity::Caller;
use support::{mesh, password, person_with_data, submit, wait_closed};
use tonic::{Code, transport::Channel};

fn rights_as(mesh: &Mesh, caller: &Caller) -> anyhow::Result<RightsServiceClient<Channel>> {
    Ok(RightsServiceClient::new(mesh.channel_as("rights", caller)?))
}

fn other_client() -> Caller {
    Caller::Client("other-app".to_owned())
}

async fn download(
    client: &mut RightsServiceClient<Channel>,
    request: pb::DownloadExportRequest,
) -> Result<usize, tonic::Status> {
    let mut stream = client.download_export(request).await?.into_inner();
    let mut bytes = 0;
    while let Some(chunk) = stream.message().await? {
        bytes += chunk.chunk.len();
    }
    Ok(bytes)
}

#[tokio::test]
async fn another_client_cannot_see_follow_download_or_cancel_a_request() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let access = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: password(&person),
            ..Default::default()
        },
    )
    .await?;
    let done = wait_closed(&mesh, &access.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32);
    assert!(
        !done.download_token.is_empty(),
        "the submitter gets the token"
    );

    let mut other = rights_as(&mesh, &other_client())?;
    let id = access.request_id.clone();
    let not_found = |result: Result<(), tonic::Status>, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(err.code(), Code::NotFound, "{what}: {err:?}");
    };
    not_found(
        other
            .get_request(pb::GetRequestRequest {
                request_id: id.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetRequest",
    );
    not_found(
        other
            .watch_request(pb::WatchRequestRequest {
                request_id: id.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "WatchRequest",
    );
    not_found(
        download(
            &mut other,
            pb::DownloadExportRequest {
                request_id: id.clone(),
                // Even with the token: it is not the other client's request.
                download_token: done.download_token.clone(),
                ..Default::default()
            },
        )
        .await
        .map(|_| ()),
        "DownloadExport",
    );

    // The person's own session opens it to any client they use; the token is not
    // given twice.
    let session = mesh
        .identity()
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?
        .into_inner()
        .session_token;
    let seen = other
        .get_request(pb::GetRequestRequest {
            request_id: id.clone(),
            session_token: session.clone(),
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(seen.request_id, id);
    assert!(seen.download_token.is_empty(), "the token is given once");

    // The download needs the one-time token, and uses it up.
    let mut owner = mesh.rights();
    let err = download(
        &mut owner,
        pb::DownloadExportRequest {
            request_id: id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("no token");
    assert_eq!(err.code(), Code::InvalidArgument);
    let bytes = download(
        &mut owner,
        pb::DownloadExportRequest {
            request_id: id.clone(),
            download_token: done.download_token.clone(),
            ..Default::default()
        },
    )
    .await?;
    assert!(bytes > 0);
    let again = download(
        &mut owner,
        pb::DownloadExportRequest {
            request_id: id.clone(),
            download_token: done.download_token.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("used up");
    assert_eq!(again.code(), Code::InvalidArgument);
    // The privacy team downloads without one.
    let mut admin = rights_as(&mesh, &Caller::Admin)?;
    assert!(
        download(
            &mut admin,
            pb::DownloadExportRequest {
                request_id: id.clone(),
                ..Default::default()
            },
        )
        .await?
            > 0
    );

    // Nor can another client cancel or verify a request that is not its own.
    let pending = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Portability as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            ..Default::default()
        },
    )
    .await?;
    not_found(
        other
            .verify_request(pb::VerifyRequestRequest {
                request_id: pending.request_id.clone(),
                subject_id: subject.clone(),
                credential: password(&person),
            })
            .await
            .map(|_| ()),
        "VerifyRequest",
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

/// A pending request names its subject for good: verifying it with another person's
/// credential does not move it to them.
#[tokio::test]
async fn verifying_never_changes_a_requests_subject() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (ada, ada_subject) = person_with_data(&mesh).await?;
    let (bob, bob_subject) = person_with_data(&mesh).await?;
    let pending = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: ada_subject.clone(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(pending.status, Status::VerificationRequired as i32);
    let err = mesh
        .rights()
        .verify_request(pb::VerifyRequestRequest {
            request_id: pending.request_id.clone(),
            subject_id: bob_subject.clone(),
            credential: password(&bob),
        })
        .await
        .expect_err("another subject");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(pdm_testkit::assert::field_violations(&err), ["subject_id"]);
    let still = support::get(&mesh, &pending.request_id).await?;
    assert_eq!(still.status, Status::VerificationRequired as i32);
    // Still Ada's: her own credential verifies it, for her.
    let verified = mesh
        .rights()
        .verify_request(pb::VerifyRequestRequest {
            request_id: pending.request_id.clone(),
            subject_id: String::new(),
            credential: password(&ada),
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(verified.subject_id, ada_subject);
    assert_ne!(verified.status, Status::VerificationRequired as i32);
    Ok(())
}
