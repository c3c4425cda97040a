//! The DPO's register of impact assessments (issue 21; policy "Data Protection Officer":
//! the DPO "monitors compliance" and "advises on impact assessments"), over gRPC with the
//! incidents and transfers services running: an assessment recorded and revised against
//! the version read (a stale revision ABORTED), every version kept, the register paged
//! newest first; the overdue reviews list the DPIAs past their review date and the
//! transfers service's TIAs due for review, and nothing not yet due; bad input a field
//! violation per bad field with nothing stored; the texts never in the logs.

mod assessments_support;

use assessments_support::{ADVICE, admin, details, mechanism, mesh, recipient, record};
use chrono::Duration;
use pdm_proto::incidents::v1::{self as pb, AssessmentOutcome, ResidualRisk, ReviewKind};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{assert::field_violations, start_time};
use pdm_tls::identity::Caller;
use tonic::Code;

fn revision(
    id: &str,
    expected_version: i32,
    details: pb::AssessmentDetails,
) -> pb::RecordAssessmentRequest {
    pb::RecordAssessmentRequest {
        assessment_id: id.to_owned(),
        details: Some(details),
        actor: "dpo-office".into(),
        expected_version,
    }
}

#[tokio::test]
async fn an_assessment_is_revised_against_the_version_read_and_every_version_is_kept()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();

    let first = record(&mut client, details(now, Duration::days(365))).await?;
    assert_eq!(first.version, 1);
    assert!(!first.review_overdue);
    let d = first.details.clone().unwrap_or_default();
    assert_eq!(d.dpo_advice, ADVICE);
    assert_eq!(d.next_review_at, Some(timestamp(now + Duration::days(365))));

    clock.advance(Duration::days(30));
    let mut changed = details(clock.now(), Duration::days(180));
    changed.residual_risk = ResidualRisk::Medium as i32;
    changed
        .risks
        .push("Device identifiers link reports to a person.".into());
    let second = client
        .record_assessment(revision(&first.assessment_id, 1, changed.clone()))
        .await?
        .into_inner();
    assert!(!second.created);
    let second = second.assessment.unwrap_or_default();
    assert_eq!(second.version, 2);
    assert_eq!(second.assessment_id, first.assessment_id);
    assert_eq!(
        second.details.as_ref().map(|d| d.residual_risk()),
        Some(ResidualRisk::Medium)
    );

    // A revision made from version 1 again lost the race: ABORTED, nothing changed.
    let stale = client
        .record_assessment(revision(
            &first.assessment_id,
            1,
            details(now, Duration::days(90)),
        ))
        .await
        .expect_err("a stale revision");
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert!(stale.message().contains("version 2"), "{stale:?}");

    let got = client
        .get_assessment(pb::GetAssessmentRequest {
            assessment_id: first.assessment_id.clone(),
            include_history: true,
        })
        .await?
        .into_inner();
    let current = got.assessment.unwrap_or_default();
    assert_eq!(current.version, 2);
    assert_eq!(current.details, second.details);
    let versions: Vec<(i32, usize)> = got
        .versions
        .iter()
        .map(|v| (v.version, v.details.as_ref().map_or(0, |d| d.risks.len())))
        .collect();
    assert_eq!(versions, [(1, 1), (2, 2)]);
    assert_eq!(got.versions[1].changed_at, Some(timestamp(clock.now())));

    // Unknown assessments: NOT_FOUND, for a read and a revision alike.
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = client
        .get_assessment(pb::GetAssessmentRequest {
            assessment_id: unknown.clone(),
            include_history: false,
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .record_assessment(revision(&unknown, 1, changed))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    // Only the privacy team reads the register.
    let mut other = pb::assessments_service_client::AssessmentsServiceClient::new(
        mesh.channel_as("incidents", &Caller::Client("shop".into()))?,
    );
    let err = other
        .list_assessments(pb::ListAssessmentsRequest::default())
        .await
        .expect_err("a company client");
    assert_eq!(err.code(), Code::PermissionDenied);

    // The DPO's advice (it names a person here) is stored, never logged.
    mesh.logs().assert_clean(&[
        ("advice", ADVICE),
        ("name", "Grace Hopper"),
        ("email", "grace.hopper@example.org"),
    ]);
    Ok(())
}

#[tokio::test]
async fn the_register_is_listed_newest_first_in_pages() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut d = details(clock.now(), Duration::days(365));
        d.title = format!("Processing {i}");
        ids.push(record(&mut client, d).await?.assessment_id);
        clock.advance(Duration::minutes(1));
    }
    ids.reverse();
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_assessments(pb::ListAssessmentsRequest {
                page_size: 2,
                page_token,
            })
            .await?
            .into_inner();
        pages += 1;
        assert!(page.assessments.len() <= 2);
        listed.extend(page.assessments.into_iter().map(|a| a.assessment_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed, ids);
    assert_eq!(pages, 3);

    let err = client
        .list_assessments(pb::ListAssessmentsRequest {
            page_size: 501,
            page_token: "nope".into(),
        })
        .await
        .expect_err("bad paging");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(fields, ["page_size", "page_token"]);
    Ok(())
}

/// GDPR Art. 35(11) and the DPO's monitoring (Art. 39(1)(c)): a DPIA past its review date
/// and a transfer impact assessment due for review are both listed; those not yet due,
/// and a mechanism without a TIA, are not.
#[tokio::test]
async fn overdue_reviews_list_the_dpias_and_the_tias_past_their_review_date() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let t0 = clock.now();

    let mut soon = details(t0, Duration::days(10));
    soon.title = "Due in 10 days".into();
    let soon = record(&mut client, soon).await?;
    let mut later = details(t0, Duration::days(100));
    later.title = "Due in 100 days".into();
    let later = record(&mut client, later).await?;
    let to = recipient(&mesh).await?;
    let tia_due = mechanism(&mesh, &to, t0 + Duration::days(20), "TIA-IN-1").await?;
    let tia_later = mechanism(&mesh, &to, t0 + Duration::days(200), "TIA-IN-2").await?;
    let no_tia = mechanism(&mesh, &to, t0 + Duration::days(5), "").await?;

    let none = client
        .list_overdue_reviews(pb::ListOverdueReviewsRequest {})
        .await?
        .into_inner();
    assert!(none.reviews.is_empty(), "{none:?}");

    clock.advance(Duration::days(30));
    let overdue = client
        .list_overdue_reviews(pb::ListOverdueReviewsRequest {})
        .await?
        .into_inner()
        .reviews;
    let listed: Vec<(ReviewKind, String, i32)> = overdue
        .iter()
        .map(|r| {
            let id = match r.kind() {
                ReviewKind::Dpia => r
                    .assessment
                    .as_ref()
                    .map(|a| a.assessment_id.clone())
                    .unwrap_or_default(),
                _ => r
                    .mechanism
                    .as_ref()
                    .map(|m| m.mechanism_id.clone())
                    .unwrap_or_default(),
            };
            (r.kind(), id, r.days_overdue)
        })
        .collect();
    assert_eq!(
        listed,
        [
            (ReviewKind::Dpia, soon.assessment_id.clone(), 20),
            (ReviewKind::Tia, tia_due.clone(), 10),
        ]
    );
    assert!(
        overdue[0]
            .assessment
            .as_ref()
            .is_some_and(|a| a.review_overdue)
    );
    assert_eq!(overdue[1].recipient_name, "Hosting IN");
    assert_eq!(
        overdue[1]
            .mechanism
            .as_ref()
            .and_then(|m| m.tia.as_ref())
            .map(|t| t.reference.as_str()),
        Some("TIA-IN-1")
    );
    assert!(
        !listed
            .iter()
            .any(|(_, id, _)| { *id == later.assessment_id || *id == tia_later || *id == no_tia })
    );

    // Reviewed: the revision moves the date, and the DPIA leaves the listing.
    let reviewed = client
        .record_assessment(revision(
            &soon.assessment_id,
            1,
            details(clock.now(), Duration::days(365)),
        ))
        .await?
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert!(!reviewed.review_overdue);
    let overdue = client
        .list_overdue_reviews(pb::ListOverdueReviewsRequest {})
        .await?
        .into_inner()
        .reviews;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].kind(), ReviewKind::Tia);
    Ok(())
}

#[tokio::test]
async fn bad_input_is_a_field_violation_per_bad_field_and_nothing_is_stored() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();

    let all_bad = pb::AssessmentDetails {
        title: "two\nlines".into(),
        processing: String::new(),
        purposes: vec!["Marketing Emails".into(), "4111111111111111".into()],
        data_categories: vec!["account.profile".into(), "account.profile".into()],
        risks: Vec::new(),
        measures: vec!["x".repeat(2_001)],
        residual_risk: 0,
        dpo_advice: " ".into(),
        dpo_advice_followed: false,
        advice_departure_reason: String::new(),
        outcome: 9,
        assessed_at: Some(timestamp(now + Duration::days(1))),
        next_review_at: None,
        late_review_reason: "x".repeat(4_001),
    };
    let err = client
        .record_assessment(pb::RecordAssessmentRequest {
            assessment_id: "not-an-id".into(),
            details: Some(all_bad),
            actor: String::new(),
            expected_version: 0,
        })
        .await
        .expect_err("bad input");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "actor",
            "assessment_id",
            "details.advice_departure_reason",
            "details.assessed_at",
            "details.data_categories[1]",
            "details.dpo_advice",
            "details.late_review_reason",
            "details.measures[0]",
            "details.next_review_at",
            "details.outcome",
            "details.processing",
            "details.purposes[0]",
            "details.purposes[1]",
            "details.residual_risk",
            "details.risks",
            "details.title",
            "expected_version",
        ]
    );

    // The rules between fields, one at a time.
    let cases: Vec<(&str, pb::AssessmentDetails)> = vec![
        // Art. 36(1): a high residual risk is not simply accepted.
        ("details.outcome", {
            let mut d = details(now, Duration::days(365));
            d.residual_risk = ResidualRisk::High as i32;
            d
        }),
        ("details.outcome", {
            let mut d = details(now, Duration::days(365));
            d.measures.clear();
            d
        }),
        // Art. 35(11): a review date already passed needs the reason it lapsed.
        ("details.next_review_at", details(now, -Duration::hours(1))),
        (
            "details.next_review_at",
            details(now, Duration::days(1_096)),
        ),
        ("details.next_review_at", {
            let mut d = details(now, Duration::days(365));
            d.next_review_at = d.assessed_at;
            d
        }),
        ("details.late_review_reason", {
            let mut d = details(now, Duration::days(365));
            d.late_review_reason = "carried over".into();
            d
        }),
        ("details.advice_departure_reason", {
            let mut d = details(now, Duration::days(365));
            d.advice_departure_reason = "we did follow it".into();
            d
        }),
    ];
    for (field, d) in cases {
        let err = record(&mut client, d).await.expect_err(field);
        assert_eq!(field_violations(&err), [field]);
    }
    let listed = client
        .list_assessments(pb::ListAssessmentsRequest::default())
        .await?
        .into_inner();
    assert!(listed.assessments.is_empty(), "stored: {listed:?}");

    // A DPIA carried over with its review already lapsed is recorded with the reason, and
    // is overdue at once; advice not followed is recorded with why.
    let mut carried = details(now - Duration::days(800), Duration::days(700));
    carried.late_review_reason = "Carried over from the 2024 register; review booked.".into();
    carried.dpo_advice_followed = false;
    carried.advice_departure_reason = "The board kept the 12-month period.".into();
    carried.residual_risk = ResidualRisk::High as i32;
    carried.outcome = AssessmentOutcome::ConsultAuthority as i32;
    let carried = record(&mut client, carried).await?;
    assert!(carried.review_overdue);

    // A revision names the version it was made from.
    let err = client
        .record_assessment(revision(
            &carried.assessment_id,
            0,
            details(now, Duration::days(365)),
        ))
        .await
        .expect_err("no expected_version");
    assert_eq!(field_violations(&err), ["expected_version"]);
    Ok(())
}
