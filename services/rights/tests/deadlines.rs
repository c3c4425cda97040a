//! Legal deadlines through the API, on a clock the tests move: one calendar month under
//! every regime ("If you make a request, we have one month to respond to you", in the
//! policy's GDPR and CCPA sections alike), a confirmation within 10 business days under
//! the CCPA, extensions made by the privacy team only and never without the subject told
//! why and until when, overdue requests, and the yearly report.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use pdm_proto::rights::v1::rights_service_client::RightsServiceClient;
use pdm_proto::rights::v1::{self as pb, Regime, RequestKind, Status};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, fake::Person};
use pdm_tls::identity::Caller;
use support::{builder, password, sent_message, submit, task, wait_closed, wait_for};
use tonic::Code;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid time")
}

/// The last instant of a day, as the API shows it.
fn end_of(y: i32, m: u32, d: u32) -> Option<prost_types::Timestamp> {
    let day = NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
    Some(timestamp(
        day.and_hms_micro_opt(23, 59, 59, 999_999)
            .expect("a valid time")
            .and_utc(),
    ))
}

async fn start(clock: &Arc<ManualClock>, outbox: &std::path::Path) -> anyhow::Result<Mesh> {
    builder(outbox).clock(clock.clone()).start().await
}

/// A request that waits for its subject to verify (no credential: identity is not asked).
fn unverified(kind: RequestKind, regime: Regime, subject: &str) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        kind: kind as i32,
        regime: regime as i32,
        subject_id: subject.to_owned(),
        ..Default::default()
    }
}

fn verified(
    kind: RequestKind,
    regime: Regime,
    subject: &str,
    person: &Person,
) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        credential: password(person),
        ..unverified(kind, regime, subject)
    }
}

/// Extends a deadline as the privacy team.
async fn extend(
    mesh: &Mesh,
    request_id: &str,
    months: i32,
    reason: &str,
) -> Result<pb::DataSubjectRequest, tonic::Status> {
    let channel = mesh
        .channel_as("rights", &Caller::Admin)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    Ok(RightsServiceClient::new(channel)
        .extend_deadline(pb::ExtendDeadlineRequest {
            request_id: request_id.to_owned(),
            months,
            reason: reason.to_owned(),
        })
        .await?
        .into_inner()
        .request
        .expect("request"))
}

async fn list(mesh: &Mesh, filter: pb::ListRequestsRequest) -> anyhow::Result<Vec<String>> {
    Ok(mesh
        .rights()
        .list_requests(filter)
        .await?
        .into_inner()
        .requests
        .into_iter()
        .map(|r| r.request_id)
        .collect())
}

/// Waits until a request's telemetry task has failed (the service is down), so the
/// request stays open.
async fn stuck_on_telemetry(mesh: &Mesh, request_id: &str) -> anyhow::Result<()> {
    let r = wait_for(mesh, request_id, "telemetry task failed", |r| {
        r.tasks
            .iter()
            .any(|t| t.service == "telemetry" && t.status == "failed")
    })
    .await?;
    assert_eq!(r.status, Status::InProgress as i32, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn due_dates_follow_the_calendar() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 1, 31, 10));
    let mesh = start(&clock, &dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // (received, regime, due, CCPA confirmation)
    let cases = [
        // 31 January: February has no 31st, so its last day (non-leap and leap years).
        (at(2026, 1, 31, 10), Regime::Gdpr, end_of(2026, 2, 28), None),
        (
            at(2027, 1, 31, 23),
            Regime::UkGdpr,
            end_of(2027, 2, 28),
            None,
        ),
        (at(2028, 1, 31, 0), Regime::Swiss, end_of(2028, 2, 29), None),
        (at(2026, 3, 15, 12), Regime::Gdpr, end_of(2026, 4, 15), None),
        (
            at(2026, 12, 31, 12),
            Regime::UkGdpr,
            end_of(2027, 1, 31),
            None,
        ),
        // CCPA: one month too ("CCPA Privacy Rights": "If you make a request, we have one
        // month to respond to you"); receipt confirmed within 10 business days (a Sunday,
        // then two working weeks).
        (
            at(2026, 3, 15, 12),
            Regime::Ccpa,
            end_of(2026, 4, 15),
            end_of(2026, 3, 27),
        ),
        // Received on a Saturday: confirmed by the Friday two weeks on; due at the end of
        // February, as under the GDPR.
        (
            at(2026, 1, 31, 10),
            Regime::Ccpa,
            end_of(2026, 2, 28),
            end_of(2026, 2, 13),
        ),
    ];
    for (received, regime, due, confirm_by) in cases {
        clock.set(received);
        let kind = if regime == Regime::Ccpa {
            RequestKind::CcpaKnow
        } else {
            RequestKind::Access
        };
        // Verified or not, the clock runs from receipt.
        for r in [
            submit(&mesh, verified(kind, regime, &subject, &person)).await?,
            submit(&mesh, unverified(kind, regime, &subject)).await?,
        ] {
            assert_eq!(r.received_at, Some(timestamp(received)));
            assert_eq!(r.due_at, due, "{regime:?} received {received}");
            assert_eq!(r.original_due_at, due);
            assert_eq!(r.confirm_by, confirm_by, "{regime:?} received {received}");
            assert!(!r.overdue);
        }
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn gdpr_deadlines_extend_by_two_months_at_most_and_only_in_time() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let clock = ManualClock::new(at(2026, 1, 31, 9));
    let mut mesh = start(&clock, &outbox).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    // Telemetry is down: the access requests stay open.
    mesh.stop("telemetry").await?;
    let first = submit(
        &mesh,
        verified(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let second = submit(
        &mesh,
        verified(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    stuck_on_telemetry(&mesh, &first.request_id).await?;
    stuck_on_telemetry(&mesh, &second.request_id).await?;

    // No reason, no extension.
    let status = extend(&mesh, &first.request_id, 2, "  ")
        .await
        .expect_err("a reason is required");
    assert_eq!(status.code(), Code::InvalidArgument);

    clock.advance(Duration::days(10));
    let reason = "the request spans several archived systems";
    let extended = extend(&mesh, &first.request_id, 2, reason).await?;
    assert_eq!(extended.due_at, end_of(2026, 4, 28));
    assert_eq!(extended.original_due_at, end_of(2026, 2, 28));
    assert_eq!(extended.extension_reason, reason);
    assert_eq!(extended.status, Status::InProgress as i32);
    assert_eq!(
        mesh.rights()
            .get_request(pb::GetRequestRequest {
                request_id: first.request_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .request
            .expect("request")
            .due_at,
        end_of(2026, 4, 28),
        "stored"
    );
    // Art. 12(3): the subject is told, with the reasons.
    let message = sent_message(&mesh, &outbox, &[&first.request_id, "(extended)"]).await?;
    assert_eq!(message["to"], person.email.as_str());
    let body = message["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("2026-04-28") && body.contains(reason),
        "{body}"
    );

    // A third month is more than the law allows.
    let status = extend(&mesh, &first.request_id, 1, "still more time")
        .await
        .expect_err("a third month");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        wait_for(&mesh, &first.request_id, "unchanged", |_| true)
            .await?
            .due_at,
        end_of(2026, 4, 28)
    );

    // One month, then another: two in all is fine.
    let one = extend(&mesh, &second.request_id, 1, reason).await?;
    assert_eq!(one.due_at, end_of(2026, 3, 28));
    // Once the first deadline has passed, it is too late to extend.
    clock.set(at(2026, 3, 1, 0));
    let status = extend(&mesh, &second.request_id, 1, reason)
        .await
        .expect_err("after the first deadline");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // A closed request cannot be extended either.
    let done = submit(
        &mesh,
        pb::SubmitRequestRequest {
            rectifications: vec![pb::Rectification {
                field: "region".into(),
                value: "REGION_EEA".into(),
            }],
            ..verified(RequestKind::Rectification, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &done.request_id).await?.status,
        Status::Completed as i32
    );
    let status = extend(&mesh, &done.request_id, 1, reason)
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn ccpa_if_you_make_a_request_we_have_one_month_to_respond_unless_the_privacy_team_extends_it_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let clock = ManualClock::new(at(2026, 3, 15, 12));
    let mut mesh = start(&clock, &outbox).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    mesh.stop("telemetry").await?;
    let r = submit(
        &mesh,
        verified(RequestKind::CcpaKnow, Regime::Ccpa, &subject, &person),
    )
    .await?;
    stuck_on_telemetry(&mesh, &r.request_id).await?;
    assert_eq!(
        r.due_at,
        end_of(2026, 4, 15),
        "one month, as the policy says"
    );

    // The client that submitted the request cannot stretch the deadline.
    let status = mesh
        .rights()
        .extend_deadline(pb::ExtendDeadlineRequest {
            request_id: r.request_id.clone(),
            months: 0,
            reason: "we are busy".into(),
        })
        .await
        .expect_err("only the privacy team extends");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let reason = "records held by a processor";
    let extended = extend(&mesh, &r.request_id, 0, reason).await?;
    assert_eq!(extended.due_at, end_of(2026, 6, 13), "90 days from receipt");
    assert_eq!(extended.original_due_at, end_of(2026, 4, 15));
    assert_eq!(extended.extension_reason, reason);
    // The subject is told why and until when.
    let message = sent_message(&mesh, &outbox, &[&r.request_id, "(extended)"]).await?;
    assert_eq!(message["to"], person.email.as_str());
    let body = message["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(reason) && body.contains("2026-06-13") && body.contains("2026-04-15"),
        "{body}"
    );

    let status = extend(&mesh, &r.request_id, 0, "and again")
        .await
        .expect_err("CCPA extends once");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn requests_are_listed_by_status_kind_and_due_date_and_overdue_ones_show()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 3, 2, 9));
    let mut mesh = start(&clock, &dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    let rectified = submit(
        &mesh,
        pb::SubmitRequestRequest {
            rectifications: vec![pb::Rectification {
                field: "region".into(),
                value: "REGION_CH".into(),
            }],
            ..verified(RequestKind::Rectification, Regime::Swiss, &subject, &person)
        },
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &rectified.request_id).await?.status,
        Status::Completed as i32
    );
    clock.advance(Duration::hours(1));
    let opted_out = submit(
        &mesh,
        verified(RequestKind::CcpaOptOut, Regime::Ccpa, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &opted_out.request_id).await?.status,
        Status::Completed as i32
    );
    // Telemetry is down: this access request stays in progress.
    mesh.stop("telemetry").await?;
    clock.advance(Duration::hours(1));
    let open = submit(
        &mesh,
        verified(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    stuck_on_telemetry(&mesh, &open.request_id).await?;
    clock.advance(Duration::hours(1));
    let waiting = submit(
        &mesh,
        unverified(RequestKind::Erasure, Regime::Gdpr, &subject),
    )
    .await?;
    assert_eq!(waiting.status, Status::VerificationRequired as i32);

    let by_status = |status: Status| pb::ListRequestsRequest {
        status: status as i32,
        ..Default::default()
    };
    assert_eq!(
        list(&mesh, by_status(Status::InProgress)).await?,
        std::slice::from_ref(&open.request_id)
    );
    assert_eq!(
        list(&mesh, by_status(Status::VerificationRequired)).await?,
        std::slice::from_ref(&waiting.request_id)
    );
    assert_eq!(
        list(&mesh, by_status(Status::Completed)).await?,
        [rectified.request_id.clone(), opted_out.request_id.clone()],
        "soonest due first"
    );
    assert_eq!(
        list(
            &mesh,
            pb::ListRequestsRequest {
                kind: RequestKind::CcpaOptOut as i32,
                ..Default::default()
            }
        )
        .await?,
        std::slice::from_ref(&opted_out.request_id)
    );
    // The requests of 2 March are all due on 2 April, the CCPA one too ("we have one
    // month to respond to you").
    let due_soon = list(
        &mesh,
        pb::ListRequestsRequest {
            due_before: Some(timestamp(at(2026, 4, 10, 0))),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(due_soon.len(), 4, "{due_soon:?}");
    let not_yet = list(
        &mesh,
        pb::ListRequestsRequest {
            due_before: Some(timestamp(at(2026, 4, 2, 0))),
            ..Default::default()
        },
    )
    .await?;
    assert!(not_yet.is_empty(), "{not_yet:?}");
    let all = list(&mesh, pb::ListRequestsRequest::default()).await?;
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.last(),
        Some(&waiting.request_id),
        "soonest due first, then the oldest"
    );
    // Pages follow each other without gaps or repeats.
    let page = mesh
        .rights()
        .list_requests(pb::ListRequestsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(page.requests.len(), 3);
    assert!(!page.next_page_token.is_empty());
    let rest = mesh
        .rights()
        .list_requests(pb::ListRequestsRequest {
            page_size: 3,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let paged: Vec<_> = page
        .requests
        .iter()
        .chain(&rest.requests)
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(paged, all);
    assert!(rest.next_page_token.is_empty());

    let overdue_only = pb::ListRequestsRequest {
        overdue_only: true,
        ..Default::default()
    };
    assert!(list(&mesh, overdue_only.clone()).await?.is_empty());
    // The deadline passes with two requests still open.
    clock.set(at(2026, 4, 3, 0));
    let mut overdue = list(&mesh, overdue_only.clone()).await?;
    overdue.sort();
    let mut expected = vec![open.request_id.clone(), waiting.request_id.clone()];
    expected.sort();
    assert_eq!(overdue, expected);
    let shown = wait_for(&mesh, &open.request_id, "overdue", |r| r.overdue).await?;
    assert_eq!(shown.status, Status::InProgress as i32);
    assert!(task(&shown, "telemetry").attempts >= 1);
    let done = wait_for(&mesh, &rectified.request_id, "completed", |_| true).await?;
    assert!(!done.overdue, "a completed request is never overdue");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn the_yearly_report_counts_requests_and_the_median_days_to_answer() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 2, 1, 9));
    let mesh = start(&clock, &dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // Three access requests answered after 1, 4 and 10 days (median 4), an objection
    // denied at once, an erasure still waiting for verification.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(
            submit(
                &mesh,
                unverified(RequestKind::Access, Regime::Gdpr, &subject),
            )
            .await?,
        );
    }
    let denied = submit(
        &mesh,
        pb::SubmitRequestRequest {
            purpose: "service_provision".into(),
            ..verified(RequestKind::Objection, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &denied.request_id).await?.status,
        Status::Denied as i32
    );
    submit(
        &mesh,
        unverified(RequestKind::Erasure, Regime::Gdpr, &subject),
    )
    .await?;
    for (r, days) in waiting.iter().zip([1, 3, 6]) {
        clock.advance(Duration::days(days));
        let verified = mesh
            .rights()
            .verify_request(pb::VerifyRequestRequest {
                request_id: r.request_id.clone(),
                subject_id: String::new(),
                credential: password(&person),
            })
            .await?
            .into_inner()
            .request
            .expect("request");
        assert_eq!(verified.status, Status::InProgress as i32, "{verified:?}");
        assert_eq!(
            wait_closed(&mesh, &r.request_id).await?.status,
            Status::Completed as i32
        );
    }
    // Next year's requests count next year.
    clock.set(at(2027, 1, 4, 9));
    submit(
        &mesh,
        unverified(RequestKind::Access, Regime::Gdpr, &subject),
    )
    .await?;

    let report = |year: i32| {
        let mesh = &mesh;
        async move {
            anyhow::Ok(
                mesh.rights()
                    .get_report(pb::GetReportRequest { year })
                    .await?
                    .into_inner(),
            )
        }
    };
    let of = |report: &pb::GetReportResponse, kind: RequestKind| {
        report
            .kinds
            .iter()
            .find(|k| k.kind == kind as i32)
            .cloned()
            .unwrap_or_else(|| panic!("{kind:?} missing from {report:?}"))
    };
    let this_year = report(2026).await?;
    assert_eq!(this_year.year, 2026);
    assert_eq!(
        this_year.kinds.len(),
        9,
        "every kind, even without requests"
    );
    let access = of(&this_year, RequestKind::Access);
    assert_eq!((access.received, access.complied, access.denied), (3, 3, 0));
    assert!(
        (access.median_days_to_answer - 4.0).abs() < 1e-9,
        "{access:?}"
    );
    let objection = of(&this_year, RequestKind::Objection);
    assert_eq!(
        (objection.received, objection.complied, objection.denied),
        (1, 0, 1)
    );
    assert!(
        objection.median_days_to_answer.abs() < 1e-9,
        "{objection:?}"
    );
    let erasure = of(&this_year, RequestKind::Erasure);
    assert_eq!(
        (erasure.received, erasure.complied, erasure.denied),
        (1, 0, 0)
    );
    let portability = of(&this_year, RequestKind::Portability);
    assert_eq!(portability.received, 0);
    let next_year = report(2027).await?;
    assert_eq!(of(&next_year, RequestKind::Access).received, 1);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_access_package_can_be_downloaded_until_it_expires() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 5, 4, 9));
    let mesh = builder(&dir.path().join("outbox.jsonl"))
        .setting("rights.package_days", 3)
        .clock(clock.clone())
        .start()
        .await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let r = submit(
        &mesh,
        verified(RequestKind::Portability, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let done = wait_closed(&mesh, &r.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32);
    assert_eq!(
        done.package_expires_at,
        Some(timestamp(at(2026, 5, 7, 9))),
        "three days after it was ready"
    );
    let package = support::download(&mesh, &r.request_id).await?;
    assert_eq!(package["schema"], "pdm.export.v1");

    clock.advance(Duration::days(3) - Duration::seconds(1));
    support::download(&mesh, &r.request_id).await?;
    clock.advance(Duration::seconds(1));
    let status = mesh
        .rights()
        .download_export(pb::DownloadExportRequest {
            request_id: r.request_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_extension_is_never_recorded_without_telling_the_subject_why_and_until_when()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(at(2026, 3, 2, 9));
    let mesh = start(&clock, &dir.path().join("outbox.jsonl")).await?;
    // A request naming a subject with no account: there is no address to tell anyone.
    let nobody = uuid::Uuid::now_v7().to_string();
    let waiting = submit(
        &mesh,
        unverified(RequestKind::Access, Regime::Gdpr, &nobody),
    )
    .await?;
    let status = extend(&mesh, &waiting.request_id, 1, "many archived systems")
        .await
        .expect_err("nobody can be told");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let after = support::get(&mesh, &waiting.request_id).await?;
    assert_eq!(after, waiting, "no extension recorded");
    let db = mesh.connect_db("rights").await?;
    assert_eq!(
        support::count(&db, "SELECT COUNT(*) AS n FROM outbox", &[]).await?,
        0
    );
    Ok(())
}
