//! The overdue listing and `pdm_incidents_overdue` (one test in this binary: the gauge is
//! process-wide, and another mesh in the same process would set it too), and a late
//! initial notification, which needs the reasons for the delay (GDPR Art. 33(1)).

mod support;

use chrono::Duration;
use pdm_proto::incidents::v1::{self as pb, DeadlineState, Phase, RiskLevel};
use pdm_runtime::{Clock, ManualClock};
use pdm_testkit::assert::field_violations;
use support::{admin, details, mesh, notify, open, state};

#[tokio::test]
async fn a_late_initial_notification_needs_its_reasons_and_overdue_ones_are_counted()
-> anyhow::Result<()> {
    let clock = ManualClock::new(pdm_testkit::start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let now = clock.now();

    let forgotten = open(&mut client, details(now)).await?;
    let notified = open(&mut client, details(now)).await?;
    let mut unlikely = details(now);
    unlikely.risk = RiskLevel::Unlikely as i32;
    unlikely.risk_reasoning = "The file was encrypted and the key was not exposed.".into();
    let unlikely = open(&mut client, unlikely).await?;
    assert_eq!(state(&unlikely, "gdpr"), DeadlineState::NotRequired);
    for regime in ["gdpr", "uk_gdpr"] {
        notify(
            &mut client,
            &notified.incident_id,
            regime,
            Phase::Initial,
            now,
            "",
        )
        .await?;
    }

    clock.advance(Duration::hours(73));
    let overdue = client
        .list_overdue(pb::ListOverdueRequest {})
        .await?
        .into_inner()
        .incidents;
    let ids: Vec<&str> = overdue.iter().map(|i| i.incident_id.as_str()).collect();
    assert_eq!(ids, [forgotten.incident_id.as_str()]);
    let metrics = pdm_metrics::render().await;
    assert!(
        metrics.lines().any(|l| l == "pdm_incidents_overdue 1"),
        "{metrics}"
    );

    // The late initial notification needs the reasons for the delay.
    let err = notify(
        &mut client,
        &forgotten.incident_id,
        "gdpr",
        Phase::Initial,
        clock.now(),
        "",
    )
    .await
    .expect_err("late without reasons");
    assert_eq!(field_violations(&err), ["delay_reason"]);
    let late = notify(
        &mut client,
        &forgotten.incident_id,
        "gdpr",
        Phase::Initial,
        clock.now(),
        "The partner confirmed the data was personal only on day 3.",
    )
    .await?
    .incident
    .expect("incident");
    assert_eq!(state(&late, "gdpr"), DeadlineState::Late);
    // Still overdue under UK GDPR.
    assert_eq!(state(&late, "uk_gdpr"), DeadlineState::Overdue);
    notify(
        &mut client,
        &forgotten.incident_id,
        "uk_gdpr",
        Phase::Initial,
        clock.now(),
        "Same as for the GDPR.",
    )
    .await?;
    let overdue = client
        .list_overdue(pb::ListOverdueRequest {})
        .await?
        .into_inner()
        .incidents;
    assert!(overdue.is_empty());
    let metrics = pdm_metrics::render().await;
    assert!(
        metrics.lines().any(|l| l == "pdm_incidents_overdue 0"),
        "{metrics}"
    );
    // An incident unlikely to result in a risk closes without notifications.
    let closed = client
        .close_incident(pb::CloseIncidentRequest {
            incident_id: unlikely.incident_id.clone(),
            closure_reason: "Recorded under Art. 33(5); not notifiable.".into(),
            actor: "dpo-office".into(),
        })
        .await?
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(closed.status(), pb::Status::Closed);
    Ok(())
}
