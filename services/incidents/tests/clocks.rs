//! The authority clocks over gRPC (GDPR/UK GDPR Art. 33(1) and (4)): 72 hours from
//! awareness, phased notifications in order with what was sent and when, a late initial
//! notification only with its reasons, the overdue listing and `pdm_incidents_overdue`,
//! and the close once the authority has its final notification.

mod support;

use chrono::{Duration, TimeZone, Utc};
use pdm_proto::incidents::v1::{self as pb, DeadlineState, Phase, RiskLevel};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{assert::field_violations, assert::rows};
use support::{admin, details, mesh, notify, open, state};
use tonic::Code;

#[tokio::test]
async fn the_72_hour_clock_runs_across_a_dst_change_and_a_month_end() -> anyhow::Result<()> {
    // Aware on Saturday 28 March 2026, 23:30 UTC: British Summer Time starts that night
    // and the month ends on the 31st. The deadline is 31 March 23:30 UTC (00:30 on
    // 1 April in London): 72 elapsed hours, whatever the wall clock says.
    let aware = Utc.with_ymd_and_hms(2026, 3, 28, 23, 30, 0).unwrap();
    let clock = ManualClock::new(aware + Duration::minutes(30));
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let mut d = details(clock.now());
    d.detected_at = Some(timestamp(aware - Duration::hours(1)));
    d.aware_at = Some(timestamp(aware));
    d.window_start = Some(timestamp(aware - Duration::days(1)));
    let opened = open(&mut client, d).await?;
    let due = Utc.with_ymd_and_hms(2026, 3, 31, 23, 30, 0).unwrap();
    for deadline in &opened.deadlines {
        assert_eq!(deadline.due_at, Some(timestamp(due)));
    }

    let listed = |client: &mut support::Client| {
        let mut client = client.clone();
        async move {
            let overdue = client
                .list_overdue(pb::ListOverdueRequest {})
                .await?
                .into_inner()
                .incidents;
            anyhow::Ok(
                overdue
                    .into_iter()
                    .map(|i| i.incident_id)
                    .collect::<Vec<_>>(),
            )
        }
    };
    // A minute before the deadline: pending, not overdue.
    clock.set(due - Duration::minutes(1));
    assert!(listed(&mut client).await?.is_empty());
    // A minute after it: overdue for both regimes.
    clock.set(due + Duration::minutes(1));
    assert_eq!(
        listed(&mut client).await?,
        std::slice::from_ref(&opened.incident_id)
    );
    let got = client
        .get_incident(pb::GetIncidentRequest {
            incident_id: opened.incident_id.clone(),
        })
        .await?
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(state(&got, "gdpr"), DeadlineState::Overdue);
    assert_eq!(state(&got, "uk_gdpr"), DeadlineState::Overdue);
    Ok(())
}

#[tokio::test]
async fn phased_notifications_meet_the_deadline_and_let_the_incident_close() -> anyhow::Result<()> {
    let clock = ManualClock::new(pdm_testkit::start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();
    let aware = now - Duration::minutes(30);
    let mut d = details(now);
    d.regimes = vec!["gdpr".into()];
    d.risk = RiskLevel::Risk as i32;
    d.risk_reasoning = "Contact details exposed to one partner.".into();
    let opened = open(&mut client, d).await?;
    let id = opened.incident_id.clone();

    // Out of order: a follow-up or a final before the initial one.
    for phase in [Phase::FollowUp, Phase::Final] {
        let err = notify(&mut client, &id, "gdpr", phase, now, "")
            .await
            .expect_err("no initial yet");
        assert_eq!(err.code(), Code::FailedPrecondition, "{phase:?}");
    }
    // Bad input: a regime not of the incident, sent before awareness, nothing said.
    let err = client
        .record_authority_notification(pb::RecordAuthorityNotificationRequest {
            incident_id: id.clone(),
            regime: "uk_gdpr".into(),
            phase: Phase::Initial as i32,
            sent_at: Some(timestamp(aware - Duration::hours(1))),
            content: "sent".into(),
            actor: "dpo-office".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad notification");
    assert_eq!(field_violations(&err), ["regime", "sent_at"]);
    let err = client
        .record_authority_notification(pb::RecordAuthorityNotificationRequest {
            incident_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("empty notification");
    assert_eq!(
        field_violations(&err),
        ["regime", "phase", "sent_at", "content", "actor"]
    );
    // Closing before the authority had its final notification is refused.
    let close = |reason: &str| pb::CloseIncidentRequest {
        incident_id: id.clone(),
        closure_reason: reason.to_owned(),
        actor: "dpo-office".into(),
    };
    let err = client
        .close_incident(close("done"))
        .await
        .expect_err("not notified");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Initial at 48 hours (in time), a follow-up, a final.
    clock.advance(Duration::hours(48));
    let initial = notify(&mut client, &id, "gdpr", Phase::Initial, clock.now(), "").await?;
    let incident = initial.incident.expect("incident");
    assert_eq!(incident.version, 2);
    assert_eq!(state(&incident, "gdpr"), DeadlineState::Met);
    let sent = initial.notification.expect("notification");
    assert_eq!(sent.sent_at, Some(timestamp(clock.now())));
    assert_eq!(sent.content, "PHASE_INITIAL notification for gdpr");
    assert_eq!(sent.reference, "CASE-gdpr");
    let again = notify(&mut client, &id, "gdpr", Phase::Initial, clock.now(), "")
        .await
        .expect_err("twice");
    assert_eq!(again.code(), Code::FailedPrecondition);
    clock.advance(Duration::days(3));
    notify(&mut client, &id, "gdpr", Phase::FollowUp, clock.now(), "").await?;
    notify(&mut client, &id, "gdpr", Phase::FollowUp, clock.now(), "").await?;
    let last = notify(&mut client, &id, "gdpr", Phase::Final, clock.now(), "").await?;
    let incident = last.incident.expect("incident");
    let phases: Vec<Phase> = incident.notifications.iter().map(|n| n.phase()).collect();
    assert_eq!(
        phases,
        [
            Phase::Initial,
            Phase::FollowUp,
            Phase::FollowUp,
            Phase::Final
        ]
    );
    // 72 hours after awareness have passed, but the deadline was met: not overdue.
    assert_eq!(state(&incident, "gdpr"), DeadlineState::Met);
    let after = notify(&mut client, &id, "gdpr", Phase::FollowUp, clock.now(), "")
        .await
        .expect_err("after final");
    assert_eq!(after.code(), Code::FailedPrecondition);

    let err = client
        .close_incident(close(""))
        .await
        .expect_err("no reason");
    assert_eq!(field_violations(&err), ["closure_reason"]);
    let closed = client
        .close_incident(close("Partner deletion confirmed; authority case closed."))
        .await?
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(closed.status(), pb::Status::Closed);
    assert_eq!(closed.version, 6);
    assert_eq!(closed.closed_at, Some(timestamp(clock.now())));
    // A closed incident does not change again.
    let err = client
        .assess_incident(pb::AssessIncidentRequest {
            incident_id: id.clone(),
            details: Some(details(clock.now())),
            actor: "analyst".into(),
            expected_version: 0,
        })
        .await
        .expect_err("closed");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let history = client
        .get_incident_history(pb::GetIncidentHistoryRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner()
        .versions;
    let changes: Vec<pb::Change> = history.iter().map(|v| v.change()).collect();
    assert_eq!(
        changes,
        [
            pb::Change::Opened,
            pb::Change::AuthorityNotified,
            pb::Change::AuthorityNotified,
            pb::Change::AuthorityNotified,
            pb::Change::AuthorityNotified,
            pb::Change::Closed,
        ]
    );
    assert_eq!(history[1].notification_id, sent.notification_id);
    assert_eq!(
        history[5].closure_reason,
        "Partner deletion confirmed; authority case closed."
    );
    let db = mesh.connect_db("incidents").await?;
    assert_eq!(rows(&db, "authority_notifications").await, 4);
    Ok(())
}
