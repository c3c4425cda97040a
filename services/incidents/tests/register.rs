//! The breach register (GDPR/UK GDPR Art. 33(5): every breach documented, its facts,
//! effects and remedial action): incidents opened, read, listed and assessed over gRPC,
//! every change a version that stays readable; bad input refused field by field with
//! nothing stored; only the privacy team may call; the description never in the logs.

mod support;

use chrono::Duration;
use pdm_proto::incidents::v1::{self as pb, Change, Nature, RiskLevel};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{
    assert::{field_violations, rows},
    start_time,
};
use pdm_tls::identity::Caller;
use support::{DESCRIPTION, admin, details, mesh, mesh_with, open, strings};
use tonic::Code;

#[tokio::test]
async fn an_incident_is_opened_assessed_and_every_version_kept() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();

    let opened = open(&mut client, details(now)).await?;
    assert!(uuid::Uuid::parse_str(&opened.incident_id).is_ok());
    assert_eq!(opened.version, 1);
    assert_eq!(opened.status(), pb::Status::Open);
    let d = opened.details.clone().expect("details");
    assert_eq!(d.description, DESCRIPTION);
    assert_eq!(d.data_categories, ["account.profile", "support.ticket"]);
    assert_eq!(d.approximate_subjects, 312);
    // Both regimes' clocks run from awareness: 72 hours.
    let aware = now - Duration::minutes(30);
    assert_eq!(opened.deadlines.len(), 2);
    for deadline in &opened.deadlines {
        assert_eq!(
            deadline.due_at,
            Some(timestamp(aware + Duration::hours(72)))
        );
        assert_eq!(deadline.state(), pb::DeadlineState::Pending);
    }

    // Assessed a day later: high risk, the window closed.
    clock.advance(Duration::days(1));
    let mut assessed = details(now);
    assessed.risk = RiskLevel::High as i32;
    assessed.risk_reasoning = "Contact details in the hands of a third party.".into();
    assessed.window_end = Some(timestamp(now - Duration::hours(2)));
    assessed.natures = vec![Nature::Integrity as i32, Nature::Confidentiality as i32];
    let v2 = client
        .assess_incident(pb::AssessIncidentRequest {
            incident_id: opened.incident_id.clone(),
            details: Some(assessed.clone()),
            actor: "analyst".into(),
            expected_version: 1,
        })
        .await?
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(v2.version, 2);
    let d2 = v2.details.clone().expect("details");
    assert_eq!(d2.risk(), RiskLevel::High);
    assert_eq!(
        d2.natures,
        [Nature::Confidentiality as i32, Nature::Integrity as i32],
        "natures are kept in their order"
    );

    // A change made against an old version is refused, and changes nothing.
    let stale = client
        .assess_incident(pb::AssessIncidentRequest {
            incident_id: opened.incident_id.clone(),
            details: Some(details(now)),
            actor: "analyst".into(),
            expected_version: 1,
        })
        .await
        .expect_err("stale version");
    assert_eq!(stale.code(), Code::Aborted);

    // The history holds each version as it stood.
    let history = client
        .get_incident_history(pb::GetIncidentHistoryRequest {
            incident_id: opened.incident_id.clone(),
        })
        .await?
        .into_inner()
        .versions;
    let summary: Vec<(i32, Change, &str, RiskLevel)> = history
        .iter()
        .map(|v| {
            (
                v.version,
                v.change(),
                v.changed_by.as_str(),
                v.details.as_ref().expect("details").risk(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, Change::Opened, "dpo-office", RiskLevel::Unspecified),
            (2, Change::Assessed, "analyst", RiskLevel::High),
        ]
    );
    assert_eq!(
        history[1].changed_at,
        Some(timestamp(now + Duration::days(1)))
    );

    let got = client
        .get_incident(pb::GetIncidentRequest {
            incident_id: opened.incident_id.clone(),
        })
        .await?
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(got.version, 2);
    assert_eq!(got.details, Some(d2));

    let unknown = client
        .get_incident(pb::GetIncidentRequest {
            incident_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);

    // No personal data of the description in the logs.
    mesh.logs().assert_clean(&[
        ("description", DESCRIPTION),
        ("email", "ada.lovelace@example.org"),
        ("phone", "+44 20 7946 0958"),
        ("name", "Ada Lovelace"),
    ]);
    Ok(())
}

#[tokio::test]
async fn the_register_is_listed_newest_first_in_pages() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut d = details(clock.now());
        d.title = format!("Incident {i}");
        ids.push(open(&mut client, d).await?.incident_id);
        clock.advance(Duration::minutes(1));
    }
    let first = client
        .list_incidents(pb::ListIncidentsRequest {
            status: pb::Status::Open as i32,
            page_size: 2,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let listed: Vec<&str> = first
        .incidents
        .iter()
        .map(|i| i.incident_id.as_str())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_incidents(pb::ListIncidentsRequest {
            status: pb::Status::Open as i32,
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await?
        .into_inner();
    let listed: Vec<&str> = second
        .incidents
        .iter()
        .map(|i| i.incident_id.as_str())
        .collect();
    assert_eq!(listed, [ids[0].as_str()]);
    assert!(second.next_page_token.is_empty());
    let closed = client
        .list_incidents(pb::ListIncidentsRequest {
            status: pb::Status::Closed as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(closed.incidents.is_empty());

    let err = client
        .list_incidents(pb::ListIncidentsRequest {
            status: 9,
            page_size: 501,
            page_token: "nope".into(),
        })
        .await
        .expect_err("bad list");
    assert_eq!(
        field_violations(&err),
        ["status", "page_size", "page_token"]
    );
    Ok(())
}

#[tokio::test]
async fn bad_details_are_refused_field_by_field_and_nothing_is_stored() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();
    let db = mesh.connect_db("incidents").await?;

    let bad = pb::IncidentDetails {
        title: "line one\nline two".into(),
        detected_at: Some(timestamp(now + Duration::hours(1))),
        aware_at: None,
        description: "paid with 4111 1111 1111 1111".into(),
        natures: vec![Nature::Unspecified as i32, 7],
        data_categories: strings(&["Account Profile", "ok", "ok"]),
        services: (0..21).map(|i| format!("svc{i}")).collect(),
        window_start: Some(timestamp(now - Duration::days(1))),
        window_end: Some(timestamp(now - Duration::days(2))),
        approximate_subjects: -1,
        approximate_records: 2_000_000_000_000,
        likely_consequences: "x".repeat(4001),
        measures_taken: String::new(),
        risk: RiskLevel::Risk as i32,
        risk_reasoning: " ".into(),
        regimes: strings(&["ccpa", "gdpr", "gdpr"]),
    };
    let err = client
        .open_incident(pb::OpenIncidentRequest {
            details: Some(bad),
            actor: String::new(),
        })
        .await
        .expect_err("bad details");
    assert_eq!(
        field_violations(&err),
        [
            "details.title",
            "details.detected_at",
            "details.aware_at",
            "details.description",
            "details.natures[0]",
            "details.natures[1]",
            "details.data_categories[0]",
            "details.data_categories[2]",
            "details.services",
            "details.window_end",
            "details.approximate_subjects",
            "details.approximate_records",
            "details.likely_consequences",
            "details.risk_reasoning",
            "details.regimes[0]",
            "details.regimes[2]",
            "actor",
        ]
    );
    let missing = client
        .open_incident(pb::OpenIncidentRequest {
            details: None,
            actor: "dpo-office".into(),
        })
        .await
        .expect_err("no details");
    assert_eq!(field_violations(&missing), ["details"]);
    let mut empty_lists = details(now);
    empty_lists.natures.clear();
    empty_lists.data_categories.clear();
    empty_lists.regimes.clear();
    empty_lists.aware_at = Some(timestamp(now - Duration::hours(2)));
    let err = client
        .open_incident(pb::OpenIncidentRequest {
            details: Some(empty_lists),
            actor: "dpo-office".into(),
        })
        .await
        .expect_err("empty lists");
    assert_eq!(
        field_violations(&err),
        [
            "details.aware_at",
            "details.natures",
            "details.data_categories",
            "details.regimes"
        ]
    );
    assert_eq!(rows(&db, "incidents").await, 0);
    assert_eq!(rows(&db, "incident_versions").await, 0);

    // A bad assessment leaves the incident as it was.
    let opened = open(&mut client, details(now)).await?;
    let mut worse = details(now);
    worse.title = String::new();
    let err = client
        .assess_incident(pb::AssessIncidentRequest {
            incident_id: opened.incident_id.clone(),
            details: Some(worse),
            actor: "analyst".into(),
            expected_version: -1,
        })
        .await
        .expect_err("bad assessment");
    assert_eq!(
        field_violations(&err),
        ["details.title", "expected_version"]
    );
    let err = client
        .get_incident(pb::GetIncidentRequest {
            incident_id: "not-an-id".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(field_violations(&err), ["incident_id"]);
    assert_eq!(rows(&db, "incidents").await, 1);
    assert_eq!(rows(&db, "incident_versions").await, 1);
    Ok(())
}

#[tokio::test]
async fn only_the_privacy_team_may_use_the_register_and_the_dpo_is_configured() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with(
        &clock,
        &[
            ("incidents.dpo.name", "Grace Hopper"),
            ("incidents.dpo.email", "dpo@example.org"),
            ("incidents.dpo.postal_address", "1 Example Street\nLondon"),
        ],
    )
    .await?;
    let mut client = admin(&mesh)?;
    let dpo = client
        .get_dpo_contact(pb::GetDpoContactRequest {})
        .await?
        .into_inner();
    assert_eq!(
        (
            dpo.name.as_str(),
            dpo.email.as_str(),
            dpo.postal_address.as_str()
        ),
        (
            "Grace Hopper",
            "dpo@example.org",
            "1 Example Street\nLondon"
        )
    );
    let regimes = client
        .list_regimes(pb::ListRegimesRequest {})
        .await?
        .into_inner()
        .regimes;
    let table: Vec<(&str, i32)> = regimes
        .iter()
        .map(|r| (r.key.as_str(), r.authority_deadline_hours))
        .collect();
    assert_eq!(table, [("gdpr", 72), ("uk_gdpr", 72)]);

    // A company client and another service of the mesh are refused.
    for caller in [
        Caller::Client("newsletter".into()),
        Caller::Service("rights".into()),
    ] {
        let mut other =
            pdm_proto::incidents::v1::incidents_service_client::IncidentsServiceClient::new(
                mesh.channel_as("incidents", &caller)?,
            );
        let err = other
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
            .expect_err("not the privacy team");
        assert_eq!(err.code(), Code::PermissionDenied, "{caller:?}");
        let err = other
            .get_dpo_contact(pb::GetDpoContactRequest {})
            .await
            .expect_err("not the privacy team");
        assert_eq!(err.code(), Code::PermissionDenied, "{caller:?}");
    }
    Ok(())
}
