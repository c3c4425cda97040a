//! Complaints and reports of compromised data reach the privacy team: "if you have any
//! kind of privacy-related complaint about our practices" and "If you believe your
//! Personal Data has been compromised, please contact us". Anyone files one
//! (ReportConcern); the team sees them soonest due first (ListConcerns) — a possible
//! compromise within 72 hours, a complaint within a month — and records its answer
//! (CloseConcern). Who reported and what they said is sealed and never logged.

mod support;

use chrono::{Duration, TimeZone, Utc};
use pdm_proto::rights::v1::{
    self as pb, ConcernKind, ConcernStatus, rights_service_client::RightsServiceClient,
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{
    Mesh,
    assert::{field_violations, raw_storage, rows},
    captured_logs,
};
use pdm_tls::identity::Caller;
use support::builder;
use tonic::{Code, transport::Channel};

fn admin(mesh: &Mesh) -> anyhow::Result<RightsServiceClient<Channel>> {
    Ok(RightsServiceClient::new(
        mesh.channel_as("rights", &Caller::Admin)?,
    ))
}

const CONTACT: &str = "worried.reader@example.org";
const WORDS: &str = "Someone used my card ending 0042 after I reset my password on your site";

#[tokio::test]
async fn if_you_believe_your_personal_data_has_been_compromised_please_contact_us()
-> anyhow::Result<()> {
    let logs = captured_logs();
    let now = Utc
        .with_ymd_and_hms(2026, 12, 3, 9, 0, 0)
        .single()
        .expect("date");
    let clock = ManualClock::new(now);
    let dir = tempfile::tempdir()?;
    let mesh = builder(&dir.path().join("outbox.jsonl"))
        .clock(clock.clone())
        .start()
        .await?;
    let db = mesh.connect_db("rights").await?;

    // A company client (the help centre's form) files both kinds.
    let compromise = mesh
        .rights()
        .report_concern(pb::ReportConcernRequest {
            kind: ConcernKind::DataCompromised as i32,
            contact_email: CONTACT.into(),
            description: WORDS.into(),
            subject_id: String::new(),
        })
        .await?
        .into_inner()
        .concern
        .expect("concern");
    assert_eq!(compromise.status, ConcernStatus::Open as i32);
    assert_eq!(
        compromise.due_at,
        Some(timestamp(now + Duration::hours(72))),
        "assessed within 72 hours"
    );
    assert!(
        compromise
            .right_to_complain
            .contains("supervisory authority")
    );
    assert!(
        compromise.contact_email.is_empty() && compromise.description.is_empty(),
        "the reporter is not told back what only the privacy team reads"
    );
    let complaint = mesh
        .rights()
        .report_concern(pb::ReportConcernRequest {
            kind: ConcernKind::Complaint as i32,
            contact_email: "someone.else@example.org".into(),
            description: "You kept emailing me after I unsubscribed.\nTwice.".into(),
            subject_id: String::new(),
        })
        .await?
        .into_inner()
        .concern
        .expect("concern");
    let due = complaint.due_at.expect("due");
    assert_eq!(
        pdm_runtime::convert::from_timestamp(&due)
            .map(|d| d.date_naive().to_string())
            .unwrap_or_default(),
        "2027-01-03",
        "a complaint is answered within the month"
    );

    // Sealed at rest, never in the log.
    let raw = raw_storage(&mesh, "rights").await;
    for secret in [CONTACT, "card ending 0042"] {
        assert!(
            !pdm_testkit::assert::contains(&raw, secret),
            "{secret} in the database files"
        );
    }
    logs.assert_clean(&[("contact", CONTACT), ("description", "card ending 0042")]);

    // Only the privacy team reads them, soonest due first; a client may not.
    let err = mesh
        .rights()
        .list_concerns(pb::ListConcernsRequest::default())
        .await
        .expect_err("a client listing");
    assert_eq!(err.code(), Code::PermissionDenied);
    clock.advance(Duration::hours(73));
    let open = admin(&mesh)?
        .list_concerns(pb::ListConcernsRequest {
            open_only: true,
            page_size: 0,
        })
        .await?
        .into_inner()
        .concerns;
    assert_eq!(
        open.iter()
            .map(|c| c.concern_id.as_str())
            .collect::<Vec<_>>(),
        [
            compromise.concern_id.as_str(),
            complaint.concern_id.as_str()
        ]
    );
    assert!(open[0].overdue, "72 hours have passed");
    assert!(!open[1].overdue);
    assert_eq!(open[0].contact_email, CONTACT);
    assert_eq!(open[0].description, WORDS);

    // The answer is recorded once.
    let closed = admin(&mesh)?
        .close_concern(pb::CloseConcernRequest {
            concern_id: compromise.concern_id.clone(),
            outcome: "No breach: the card was used elsewhere; we told the reader how to \
                      contact their bank."
                .into(),
        })
        .await?
        .into_inner()
        .concern
        .expect("concern");
    assert_eq!(closed.status, ConcernStatus::Closed as i32);
    assert!(closed.outcome.starts_with("No breach"));
    assert!(!closed.overdue);
    let again = admin(&mesh)?
        .close_concern(pb::CloseConcernRequest {
            concern_id: compromise.concern_id.clone(),
            outcome: "again".into(),
        })
        .await
        .expect_err("answered already");
    assert_eq!(again.code(), Code::FailedPrecondition);
    let open = admin(&mesh)?
        .list_concerns(pb::ListConcernsRequest {
            open_only: true,
            page_size: 0,
        })
        .await?
        .into_inner()
        .concerns;
    assert_eq!(open.len(), 1);
    assert_eq!(rows(&db, "concerns").await, 2);
    Ok(())
}

#[tokio::test]
async fn a_privacy_complaint_with_bad_fields_is_refused_field_by_field_and_nothing_is_stored()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = builder(&dir.path().join("outbox.jsonl")).start().await?;
    let db = mesh.connect_db("rights").await?;
    let err = mesh
        .rights()
        .report_concern(pb::ReportConcernRequest {
            kind: 0,
            contact_email: "not an address".into(),
            description: "d".repeat(4001),
            subject_id: "nobody".into(),
        })
        .await
        .expect_err("bad fields");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["contact_email", "description", "kind", "subject_id"]
    );
    let err = mesh
        .rights()
        .report_concern(pb::ReportConcernRequest {
            kind: ConcernKind::Complaint as i32,
            contact_email: CONTACT.into(),
            description: "my card 4111 1111 1111 1111 was shown".into(),
            subject_id: String::new(),
        })
        .await
        .expect_err("a card number");
    assert_eq!(field_violations(&err), ["description"]);
    let err = admin(&mesh)?
        .close_concern(pb::CloseConcernRequest {
            concern_id: "x".into(),
            outcome: String::new(),
        })
        .await
        .expect_err("bad fields");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(fields, ["concern_id", "outcome"]);
    assert_eq!(rows(&db, "concerns").await, 0);
    Ok(())
}
