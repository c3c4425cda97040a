//! "Our policy towards the Children": "If you think that your child provided this kind of
//! personal data on our website, we strongly encourage you to contact us immediately and
//! we will do our best efforts to promptly remove such information from our records."
//! Anyone reports (ReportChild); the privacy team confirms (ConfirmChildReport); the
//! erasure is due 72 hours later and runs before every other queued task.

mod support;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use pdm_proto::{
    identity::v1::GetAccountRequest,
    rights::v1::{
        self as pb, ChildReportStatus, Regime, RequestKind, Status,
        rights_service_client::RightsServiceClient,
    },
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, assert::field_violations, fake::Person};
use pdm_tls::identity::Caller;
use support::{builder, builder_with_relay, count, relay::Relay, request, submit, wait_closed_as};
use tonic::{Code, transport::Channel};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid time")
}

fn admin(mesh: &Mesh) -> anyhow::Result<RightsServiceClient<Channel>> {
    Ok(RightsServiceClient::new(
        mesh.channel_as("rights", &Caller::Admin)?,
    ))
}

fn by_email(email: &str, reporter: &str) -> pb::ReportChildRequest {
    pb::ReportChildRequest {
        email: email.to_owned(),
        reporter_contact: reporter.to_owned(),
        notes: "my daughter is 14 and signed up without asking".into(),
        ..Default::default()
    }
}

fn confirm(report_id: &str, subject: &str) -> pb::ConfirmChildReportRequest {
    pb::ConfirmChildReportRequest {
        report_id: report_id.to_owned(),
        subject_id: subject.to_owned(),
        verified_by: "DPO-CHILD-2026-017 (school letter checked)".into(),
        regime: Regime::UkGdpr as i32,
    }
}

#[tokio::test]
async fn we_will_do_our_best_efforts_to_promptly_remove_such_information_from_our_records()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    // Telemetry takes events of the last days only: the clock starts now.
    let start = Utc::now().trunc_subsecs(0);
    let clock = ManualClock::new(start);
    // The confirmation goes by SMTP, readable here (in the mailbox file it is sealed
    // under a key dropped once written: its subject is erased).
    let relay = Relay::default();
    let addr = relay.start().await?;
    let mesh = builder_with_relay(&outbox, &addr)
        .clock(clock.clone())
        .start()
        .await?;
    let (child, subject) = support::person_with_data(&mesh).await?;
    let parent = "parent.of.a.child@example.org";

    // A parent reports through the product's form (a company client): the answer shows
    // nothing of the account, and nothing is erased yet.
    let report = mesh
        .rights()
        .report_child(by_email(&child.email, parent))
        .await?
        .into_inner()
        .report
        .expect("report");
    assert_eq!(report.status, ChildReportStatus::Reported as i32);
    assert_eq!(report.received_at, Some(timestamp(start)));
    assert!(report.subject_id.is_empty() && report.email.is_empty());
    assert!(report.reporter_contact.is_empty() && report.notes.is_empty());
    // The same answer for an address nobody holds.
    let nobody = mesh
        .rights()
        .report_child(by_email("nobody.here@example.org", parent))
        .await?
        .into_inner()
        .report
        .expect("report");
    assert_eq!(nobody.status, report.status);

    // Only the privacy team lists and confirms.
    let status = mesh
        .rights()
        .list_child_reports(pb::ListChildReportsRequest::default())
        .await
        .expect_err("a client may not list reports");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = mesh
        .rights()
        .confirm_child_report(confirm(&report.report_id, &subject))
        .await
        .expect_err("a client may not confirm");
    assert_eq!(status.code(), Code::PermissionDenied);
    let listed = admin(&mesh)?
        .list_child_reports(pb::ListChildReportsRequest {
            waiting_only: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let seen = listed
        .reports
        .iter()
        .find(|r| r.report_id == report.report_id)
        .expect("listed");
    assert_eq!(seen.email, child.email.to_lowercase());
    assert_eq!(seen.reporter_contact, parent);
    assert_eq!(listed.reports.len(), 2);

    // The report named an email: the privacy team says which account it is.
    clock.advance(Duration::hours(5));
    let status = admin(&mesh)?
        .confirm_child_report(confirm(&report.report_id, ""))
        .await
        .expect_err("no subject");
    assert_eq!(field_violations(&status), ["subject_id"]);
    let confirmed = admin(&mesh)?
        .confirm_child_report(confirm(&report.report_id, &subject))
        .await?
        .into_inner();
    let erasure = confirmed.request.expect("erasure request");
    let confirmed_report = confirmed.report.expect("report");
    assert_eq!(confirmed_report.status, ChildReportStatus::Confirmed as i32);
    assert_eq!(confirmed_report.erasure_request_id, erasure.request_id);
    assert_eq!(erasure.kind, RequestKind::Erasure as i32);
    assert_eq!(erasure.subject_id, subject);
    assert!(erasure.concerns_child);
    assert_eq!(erasure.received_at, Some(timestamp(start)));
    // "Promptly": 72 hours from the confirmation.
    assert_eq!(
        erasure.due_at,
        Some(timestamp(start + Duration::hours(5 + 72)))
    );

    let done = wait_closed_as(&mesh, &Caller::Admin, &erasure.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    let status = mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect_err("the account is gone");
    assert_eq!(status.code(), Code::NotFound);
    // The reporter hears that it is done.
    let message = relay
        .wait_for(&[
            &erasure.request_id,
            "Subject: Your privacy request (completed)",
        ])
        .await?;
    assert_eq!(message.to, [parent]);
    assert!(
        message.data.contains("has been removed from our records"),
        "{message:?}"
    );

    // Confirmed once only.
    let status = admin(&mesh)?
        .confirm_child_report(confirm(&report.report_id, &subject))
        .await
        .expect_err("already confirmed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let mut secrets = child.secrets();
    secrets.push(("reporter", parent));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn we_will_do_our_best_efforts_to_promptly_remove_such_information_ahead_of_all_other_work()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 3, 2, 9));
    let mut mesh = builder(&dir.path().join("outbox.jsonl"))
        .clock(clock.clone())
        .setting("rights.parallelism", "1")
        .start()
        .await?;
    let (adult, ordinary) = (Person::new(), Person::new());
    let adult_id = mesh.sign_up(&adult).await?;
    let ordinary_id = mesh.sign_up(&ordinary).await?;
    let child = Person::new();
    let child_id = mesh.sign_up(&child).await?;
    // Telemetry is down: every erasure waits on its telemetry task.
    mesh.stop("telemetry").await?;
    let first = submit(
        &mesh,
        request(RequestKind::Erasure, Regime::Gdpr, &ordinary_id, &ordinary),
    )
    .await?;
    let flagged = submit(
        &mesh,
        pb::SubmitRequestRequest {
            concerns_child: true,
            ..request(RequestKind::Erasure, Regime::Gdpr, &adult_id, &adult)
        },
    )
    .await?;
    clock.advance(Duration::minutes(1));
    let report = mesh
        .rights()
        .report_child(pb::ReportChildRequest {
            subject_id: child_id.clone(),
            reporter_contact: "guardian@example.org".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .report
        .expect("report");
    let erasure = admin(&mesh)?
        .confirm_child_report(confirm(&report.report_id, ""))
        .await?
        .into_inner()
        .request
        .expect("request");
    for id in [&first.request_id, &flagged.request_id, &erasure.request_id] {
        support::eventually(
            "telemetry failing",
            std::time::Duration::from_secs(30),
            || async {
                let r = admin(&mesh)?
                    .get_request(pb::GetRequestRequest {
                        request_id: id.clone(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .request
                    .expect("request");
                Ok(r.tasks
                    .iter()
                    .any(|t| t.service == "telemetry" && t.status == "failed")
                    .then_some(()))
            },
        )
        .await?;
    }
    // Everything is due again at once: the worker's claim takes the child report's task
    // first, although it was queued last, then the request flagged as a child's.
    mesh.stop("rights").await?;
    clock.advance(Duration::hours(1));
    let store = pdm_rights::store::Store::connect(mesh.settings()).await?;
    let mut order = Vec::new();
    for _ in 0..3 {
        let claimed = store
            .claim_due(clock.now(), 1, chrono::Duration::minutes(2), "test")
            .await?;
        order.extend(claimed.into_iter().map(|t| t.request_id));
    }
    assert_eq!(
        order,
        [
            erasure.request_id.clone(),
            flagged.request_id.clone(),
            first.request_id.clone()
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_child_report_is_refused_field_by_field_and_nothing_is_stored() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    let subject = uuid::Uuid::now_v7().to_string();
    let cases: [(&str, pb::ReportChildRequest, Vec<&str>); 6] = [
        (
            "nothing",
            pb::ReportChildRequest::default(),
            vec!["subject_id", "reporter_contact"],
        ),
        (
            "both a subject and an email",
            pb::ReportChildRequest {
                subject_id: subject.clone(),
                ..by_email("kid@example.org", "parent@example.org")
            },
            vec!["email"],
        ),
        (
            "a malformed subject and contact",
            pb::ReportChildRequest {
                subject_id: "ada".into(),
                reporter_contact: "call me".into(),
                ..Default::default()
            },
            vec!["subject_id", "reporter_contact"],
        ),
        (
            "a malformed email",
            by_email("kid at example dot org", "parent@example.org"),
            vec!["email"],
        ),
        (
            "a card number in the notes",
            pb::ReportChildRequest {
                notes: "paid with 4111 1111 1111 1111".into(),
                ..by_email("kid@example.org", "parent@example.org")
            },
            vec!["notes"],
        ),
        (
            "notes over 1,000 characters",
            pb::ReportChildRequest {
                notes: "n".repeat(1001),
                ..by_email("kid@example.org", "parent@example.org")
            },
            vec!["notes"],
        ),
    ];
    for (what, call, fields) in cases {
        let status = mesh.rights().report_child(call).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(field_violations(&status), fields, "{what}");
    }
    let status = admin(&mesh)?
        .confirm_child_report(pb::ConfirmChildReportRequest {
            report_id: "42".into(),
            subject_id: "ada".into(),
            verified_by: " ".into(),
            regime: 99,
        })
        .await
        .expect_err("bad confirmation");
    assert_eq!(
        field_violations(&status),
        ["report_id", "subject_id", "verified_by", "regime"]
    );
    let status = admin(&mesh)?
        .confirm_child_report(confirm(&uuid::Uuid::now_v7().to_string(), &subject))
        .await
        .expect_err("unknown report");
    assert_eq!(status.code(), Code::NotFound);
    let db = mesh.connect_db("rights").await?;
    for table in ["child_reports", "requests", "tasks"] {
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) AS n FROM {table}"), &[]).await?,
            0,
            "{table}"
        );
    }
    Ok(())
}
