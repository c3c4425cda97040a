//! Breach notices (issue 21; GDPR/UK GDPR Art. 34; the policy: "If we learn of a security
//! systems breach, we will inform you of the occurrence of the breach in accordance with
//! applicable law"): SendNotice, called by the incidents register, queues one notice per
//! (incident, subject) in the outbox in clear language with the DPO's contact, tells how
//! its delivery went, never twice; bad input is refused field by field; an erased subject
//! is not written to; the subject's next access package lists the notice and names the
//! DPO ("Data Protection Officer").

mod support;

use std::time::Duration;

use pdm_proto::rights::v1::{
    self as pb, NoticeStatus, Regime, RequestKind, Status,
    rights_service_client::RightsServiceClient,
};
use pdm_testkit::{Mesh, assert::field_violations};
use pdm_tls::identity::Caller;
use support::{
    builder, count, download, eventually, person_with_data, request, sent_message, submit,
    wait_closed,
};
use tonic::transport::Channel;

const INCIDENT: &str = "0190a3c4-2100-7000-8000-000000000021";
const WHAT: &str =
    "On 2 December a file with account names and emails was sent to the wrong partner.";
const CONSEQUENCES: &str = "You may receive phishing emails that look like ours.";
const MEASURES: &str = "The partner deleted the file and confirmed it in writing.";

fn as_incidents(mesh: &Mesh) -> anyhow::Result<RightsServiceClient<Channel>> {
    Ok(RightsServiceClient::new(mesh.channel_as(
        "rights",
        &Caller::Service("incidents".to_owned()),
    )?))
}

fn notice(subject: &str) -> pb::SendNoticeRequest {
    pb::SendNoticeRequest {
        incident_id: INCIDENT.to_owned(),
        subject_id: subject.to_owned(),
        what_happened: WHAT.to_owned(),
        likely_consequences: CONSEQUENCES.to_owned(),
        measures_taken: MEASURES.to_owned(),
    }
}

async fn mesh(outbox: &std::path::Path) -> anyhow::Result<Mesh> {
    builder(outbox)
        .setting("incidents.dpo.name", "Ada Officer")
        .setting("incidents.dpo.email", "dpo@example.org")
        .start()
        .await
}

async fn listed(mesh: &Mesh, subjects: &[&str]) -> anyhow::Result<Vec<pb::Notice>> {
    Ok(as_incidents(mesh)?
        .list_notices(pb::ListNoticesRequest {
            incident_id: INCIDENT.to_owned(),
            subject_ids: subjects.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await?
        .into_inner()
        .notices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_goes_once_per_incident_and_subject_with_the_dpo_art_34() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let mut rights = as_incidents(&mesh)?;

    let first = rights.send_notice(notice(&subject)).await?.into_inner();
    assert!(first.created);
    let stored = first.notice.expect("notice");
    assert_eq!(stored.subject_id, subject);
    assert_eq!(
        stored.dpo.as_ref().map(|d| d.email.as_str()),
        Some("dpo@example.org")
    );
    assert!(stored.delivery.is_some(), "a message queued: {stored:?}");

    // The letter: to the address on the account, in clear language, the DPO last.
    let letter = sent_message(
        &mesh,
        &outbox,
        &[WHAT, CONSEQUENCES, MEASURES, "dpo@example.org"],
    )
    .await?;
    assert_eq!(letter["to"], person.email.as_str());
    assert_eq!(letter["topic"], "breach_notice");
    assert_eq!(
        letter["subject"],
        "Important: a personal data breach that affects you"
    );

    // Again, even with other texts: the same notice, nothing new stored or sent.
    let again = rights
        .send_notice(pb::SendNoticeRequest {
            what_happened: "Another text".into(),
            ..notice(&subject)
        })
        .await?
        .into_inner();
    assert!(!again.created);
    let again = again.notice.expect("notice");
    assert_eq!(again.notice_id, stored.notice_id);
    assert_eq!(again.what_happened, WHAT);
    let db = mesh.connect_db("rights").await?;
    let messages = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE notice_id = ?",
        &[&stored.notice_id],
    )
    .await?;
    assert_eq!(messages, 1, "one message per notice");

    // Someone identity does not know: recorded, nothing to send.
    let stranger = uuid::Uuid::now_v7().to_string();
    let unknown = rights.send_notice(notice(&stranger)).await?.into_inner();
    let unknown = unknown.notice.expect("notice");
    assert_eq!(unknown.status(), NoticeStatus::NoAddress);
    assert!(unknown.delivery.is_none());

    // Delivery as it stands, per subject, in subject order.
    let notices = eventually("the notice sent", Duration::from_secs(30), || async {
        let notices = listed(&mesh, &[&subject, &stranger]).await?;
        let sent = notices
            .iter()
            .any(|n| n.subject_id == subject && n.status() == NoticeStatus::Sent);
        Ok(sent.then_some(notices))
    })
    .await?;
    assert_eq!(notices.len(), 2);
    let ids: Vec<&str> = notices.iter().map(|n| n.subject_id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in subject order");

    // No texts and no address in the logs.
    let logs = mesh.logs().contents();
    for secret in [WHAT, CONSEQUENCES, MEASURES, person.email.as_str()] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_notices_are_refused_field_by_field_with_nothing_stored() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let mut rights = as_incidents(&mesh)?;
    let refused = rights
        .send_notice(pb::SendNoticeRequest {
            incident_id: "INC-1".into(),
            subject_id: "someone".into(),
            what_happened: String::new(),
            likely_consequences: "x".repeat(4001),
            measures_taken: "Card 4111 1111 1111 1111 blocked".into(),
        })
        .await
        .expect_err("bad input");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        field_violations(&refused),
        [
            "incident_id",
            "subject_id",
            "what_happened",
            "likely_consequences",
            "measures_taken"
        ]
    );
    let refused = rights
        .list_notices(pb::ListNoticesRequest {
            incident_id: INCIDENT.into(),
            subject_ids: vec!["not-a-uuid".into()],
        })
        .await
        .expect_err("bad input");
    assert_eq!(field_violations(&refused), ["subject_ids[0]"]);
    let refused = rights
        .list_notices(pb::ListNoticesRequest {
            incident_id: INCIDENT.into(),
            subject_ids: Vec::new(),
        })
        .await
        .expect_err("no subjects");
    assert_eq!(field_violations(&refused), ["subject_ids"]);
    let stored = count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM notices",
        &[],
    )
    .await?;
    assert_eq!(stored, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_access_package_lists_the_notice_and_names_the_dpo() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    as_incidents(&mesh)?.send_notice(notice(&subject)).await?;

    let submitted = submit(
        &mesh,
        request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status(), Status::Completed, "{done:?}");
    let package = download(&mesh, &submitted.request_id).await?;
    let summary = &package["summary"];
    assert_eq!(summary["data_protection_officer"]["name"], "Ada Officer");
    assert_eq!(
        summary["data_protection_officer"]["email"],
        "dpo@example.org"
    );
    let notices = summary["breach_notices"].as_array().expect("notices");
    assert_eq!(notices.len(), 1, "{summary}");
    assert_eq!(notices[0]["incident_id"], INCIDENT);
    assert_eq!(notices[0]["what_happened"], WHAT);
    assert_eq!(notices[0]["likely_consequences"], CONSEQUENCES);
    assert_eq!(notices[0]["measures_taken"], MEASURES);
    assert_eq!(
        notices[0]["data_protection_officer"]["email"],
        "dpo@example.org"
    );
    let text = package["human_readable"].as_str().unwrap_or_default();
    assert!(
        text.contains("8. Our Data Protection Officer: Ada Officer <dpo@example.org>"),
        "{text}"
    );
    assert!(
        text.contains("9. Personal data breaches we told you of: 1"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_subject_is_not_written_to() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let erasure = submit(
        &mesh,
        request(RequestKind::Erasure, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let done = wait_closed(&mesh, &erasure.request_id).await?;
    assert_eq!(done.status(), Status::Completed, "{done:?}");

    let answer = as_incidents(&mesh)?
        .send_notice(notice(&subject))
        .await?
        .into_inner();
    let notice = answer.notice.expect("notice");
    assert_eq!(notice.status(), NoticeStatus::Dropped);
    assert!(notice.delivery.is_none());
    let messages = count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM outbox WHERE notice_id IS NOT NULL",
        &[],
    )
    .await?;
    assert_eq!(messages, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_still_waiting_when_its_subject_is_erased_is_dropped_with_its_address()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A relay that never answers: the notice waits for its next attempt.
    let mesh = support::builder_with_relay(&dir.path().join("outbox.jsonl"), "127.0.0.1:9")
        .start()
        .await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let sent = as_incidents(&mesh)?
        .send_notice(notice(&subject))
        .await?
        .into_inner()
        .notice
        .expect("notice");
    assert_eq!(sent.status(), NoticeStatus::Pending);

    let erasure = submit(
        &mesh,
        request(RequestKind::Erasure, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let done = wait_closed(&mesh, &erasure.request_id).await?;
    assert_eq!(done.status(), Status::Completed, "{done:?}");
    let notices = eventually("the notice dropped", Duration::from_secs(30), || async {
        let notices = listed(&mesh, &[&subject]).await?;
        Ok(notices
            .iter()
            .all(|n| n.status() == NoticeStatus::Dropped)
            .then_some(notices))
    })
    .await?;
    assert_eq!(notices.len(), 1);
    let holding = count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM outbox WHERE notice_id = ? AND (recipient IS NOT NULL OR file_key IS NOT NULL)",
        &[&sent.notice_id],
    )
    .await?;
    assert_eq!(
        holding, 0,
        "the dropped notice still holds an address or a mailbox key"
    );
    Ok(())
}
