//! Refusals are never silent (issue 15): a refused request carries its reasons, and the
//! subject is told them with their right to complain ("GDPR Data Protection Rights": "The
//! right to lodge a complaint with the Information Commissioner's Office – You have the
//! right to lodge a complaint with your local supervisory authority"), whether the privacy
//! team refuses (DenyRequest) or a service refuses to carry it out.

mod support;

use pdm_proto::rights::v1::{
    self as pb, Regime, RequestKind, Status, rights_service_client::RightsServiceClient,
};
use pdm_testkit::{Mesh, assert::field_violations};
use pdm_tls::identity::Caller;
use support::{
    count, get, mesh, person_with_data, request, sent_message, submit, wait_closed, wait_for,
};
use tonic::{Code, transport::Channel};

fn admin(mesh: &Mesh) -> anyhow::Result<RightsServiceClient<Channel>> {
    Ok(RightsServiceClient::new(
        mesh.channel_as("rights", &Caller::Admin)?,
    ))
}

fn deny(request_id: &str, reasons: &[&str]) -> pb::DenyRequestRequest {
    pb::DenyRequestRequest {
        request_id: request_id.to_owned(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_refusal_tells_the_subject_the_reasons_and_the_right_to_lodge_a_complaint_with_the_ico()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mut mesh = mesh(&outbox).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    // Telemetry is down: the access request stays open until someone decides.
    mesh.stop("telemetry").await?;
    let open = submit(
        &mesh,
        request(RequestKind::Access, Regime::UkGdpr, &subject, &person),
    )
    .await?;
    wait_for(&mesh, &open.request_id, "telemetry failing", |r| {
        r.tasks
            .iter()
            .any(|t| t.service == "telemetry" && t.status == "failed")
    })
    .await?;

    // Only the privacy team refuses.
    let status = mesh
        .rights()
        .deny_request(deny(&open.request_id, &["manifestly unfounded"]))
        .await
        .expect_err("a client may not refuse");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let reasons = [
        "the same request was answered in full last week",
        "repeating it is excessive under Article 12(5)",
    ];
    let denied = admin(&mesh)?
        .deny_request(deny(&open.request_id, &reasons))
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(denied.status, Status::Denied as i32, "{denied:?}");
    assert!(denied.closed_at.is_some());
    let refusal = denied.refusal.clone().expect("a refusal");
    assert_eq!(refusal.reasons, reasons);
    assert!(
        refusal
            .right_to_complain
            .contains("Information Commissioner's Office"),
        "{refusal:?}"
    );
    assert!(refusal.notified_at.is_some(), "the subject was told");
    // The task still to run is cancelled.
    assert_eq!(support::task(&denied, "telemetry").status, "rejected");
    // GetRequest shows the same.
    assert_eq!(get(&mesh, &open.request_id).await?.refusal, Some(refusal));

    // The message: every reason and where to complain, to the subject's address.
    let message = sent_message(&mesh, &outbox, &[&open.request_id, "(refused)"]).await?;
    assert_eq!(message["to"], person.email.as_str());
    let body = message["body"].as_str().unwrap_or_default();
    for reason in reasons {
        assert!(body.contains(reason), "{body}");
    }
    assert!(
        body.contains(
            "You have the right to lodge a complaint with the Information Commissioner's Office"
        ),
        "{body}"
    );

    // A closed request is not refused again.
    let status = admin(&mesh)?
        .deny_request(deny(&open.request_id, &["again"]))
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_refusal_without_valid_reasons_is_refused_and_nothing_changes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let subject = uuid::Uuid::now_v7().to_string();
    // Waiting for verification: open, and nothing runs.
    let waiting = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject,
            ..Default::default()
        },
    )
    .await?;
    let id = waiting.request_id.as_str();
    let long = "r".repeat(1001);
    let eleven: Vec<&str> = std::iter::repeat_n("a reason", 11).collect();
    let cases: [(&str, pb::DenyRequestRequest, Vec<&str>); 6] = [
        ("no reasons", deny(id, &[]), vec!["reasons"]),
        ("eleven reasons", deny(id, &eleven), vec!["reasons"]),
        (
            "a blank reason and one too long",
            deny(id, &["fine", "  ", &long]),
            vec!["reasons[1]", "reasons[2]"],
        ),
        (
            "a card number",
            deny(id, &["refund to 4111 1111 1111 1111 pending"]),
            vec!["reasons[0]"],
        ),
        (
            "a line break inside a reason",
            deny(id, &["one\ntwo"]),
            vec!["reasons[0]"],
        ),
        (
            "a bad id and no reasons",
            deny("42", &[]),
            vec!["request_id", "reasons"],
        ),
    ];
    for (what, call, fields) in cases {
        let status = admin(&mesh)?.deny_request(call).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(field_violations(&status), fields, "{what}");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = admin(&mesh)?
        .deny_request(deny(&unknown, &["no such request"]))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    assert_eq!(get(&mesh, id).await?, waiting, "the request is as it was");
    let db = mesh.connect_db("rights").await?;
    assert_eq!(
        count(&db, "SELECT COUNT(*) AS n FROM outbox", &[]).await?,
        0
    );
    // Refused with a reason, an unverified request with no account behind it closes
    // (nobody to tell: no message).
    let denied = admin(&mesh)?
        .deny_request(deny(id, &["we could not verify who made this request"]))
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(denied.status, Status::Denied as i32);
    let refusal = denied.refusal.expect("refusal");
    assert!(
        refusal
            .right_to_complain
            .contains("local supervisory authority")
    );
    assert_eq!(refusal.notified_at, None);
    Ok(())
}

#[tokio::test]
async fn a_request_a_service_refuses_tells_the_subject_why_and_where_to_complain()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    // Running the service rests on the contract: consent refuses the objection.
    let submitted = submit(
        &mesh,
        pb::SubmitRequestRequest {
            purpose: "service_provision".into(),
            ..request(RequestKind::Objection, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    let denied = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(denied.status, Status::Denied as i32, "{denied:?}");
    let refusal = get(&mesh, &submitted.request_id)
        .await?
        .refusal
        .expect("a refusal");
    assert_eq!(refusal.reasons.len(), 1, "{refusal:?}");
    assert!(
        refusal.reasons[0].starts_with("the consent service could not carry out \"object\""),
        "{refusal:?}"
    );
    assert!(
        refusal
            .right_to_complain
            .contains("local supervisory authority")
    );
    assert!(refusal.notified_at.is_some());
    let message = sent_message(&mesh, &outbox, &[&submitted.request_id, "(refused)"]).await?;
    assert_eq!(message["to"], person.email.as_str());
    let body = message["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(&refusal.reasons[0]) && body.contains("lodge a complaint"),
        "{body}"
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
