//! What a run asks of every service: one rule per category kept for a limited time, with
//! its cutoff counted back from the clock (none for data kept without limit), every
//! active hold, the dry-run flag and the run's id; and the run records what it sent.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pdm_proto::{
    retention::v1::{self as pb, PlaceLegalHoldRequest, RunStatus},
    subject::v1::{PurgeExpiredRequest, RetentionTrigger},
};
use pdm_runtime::{Clock, ManualClock, convert::from_timestamp};
use pdm_testkit::{GatedServer, start_time};
use support::{months_before, retention_only, run_purge, set, status};

/// `category -> (trigger, cutoff)` of a request.
fn rules(request: &PurgeExpiredRequest) -> BTreeMap<String, (RetentionTrigger, DateTime<Utc>)> {
    request
        .rules
        .iter()
        .map(|r| {
            (
                r.category.clone(),
                (
                    RetentionTrigger::try_from(r.trigger).unwrap_or_default(),
                    r.cutoff.as_ref().and_then(from_timestamp).expect("cutoff"),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_run_sends_each_policys_cutoff_and_every_active_hold() -> anyhow::Result<()> {
    let gated = GatedServer::start().await?;
    gated.gate.open();
    let mut settings = gated.settings("archive");
    settings.push(set("retention.services", "archive"));
    settings.push(set("retention.telemetry_months", 6));
    let clock = ManualClock::new(start_time());
    let mesh = retention_only(&clock, settings).await?;
    let mut retention = mesh.retention();
    let subject = uuid::Uuid::now_v7().to_string();
    let mut hold_ids = Vec::new();
    for (subject_id, category) in [(subject.as_str(), ""), ("", "billing.record")] {
        let hold = retention
            .place_legal_hold(PlaceLegalHoldRequest {
                hold: Some(pb::LegalHold {
                    subject_id: subject_id.to_owned(),
                    category: category.to_owned(),
                    reason: "tax audit".into(),
                    reference: "HMRC-2026-17".into(),
                    placed_by: "legal".into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .hold
            .expect("hold");
        hold_ids.push(hold.hold_id);
    }

    let (_, run) = run_purge(&mut retention, true).await?;
    assert_eq!(status(&run), RunStatus::Completed);
    let requests = gated.gate.purge_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.run_id, run.run_id);
    assert!(request.dry_run);

    let now = clock.now();
    let sent = rules(request);
    use RetentionTrigger::{AccountClosed, EventTime, RequestCompleted};
    let expected: BTreeMap<String, (RetentionTrigger, DateTime<Utc>)> = [
        ("account.profile", AccountClosed, now),
        ("account.credentials", AccountClosed, now),
        ("account.photo", AccountClosed, now),
        (
            "account.session",
            EventTime,
            now - chrono::Duration::days(30),
        ),
        ("support.ticket", EventTime, months_before(now, 96)),
        ("billing.record", AccountClosed, months_before(now, 96)),
        ("telemetry.event", EventTime, months_before(now, 6)),
        ("telemetry.crash", EventTime, months_before(now, 12)),
        ("consent.proof", AccountClosed, months_before(now, 96)),
        ("transfers.log", EventTime, months_before(now, 96)),
        // Issue 16: the access trail and aggregates have a limit too.
        ("audit.access", EventTime, months_before(now, 96)),
        ("telemetry.aggregate", EventTime, months_before(now, 120)),
        ("rights.request", RequestCompleted, months_before(now, 24)),
    ]
    .into_iter()
    .map(|(c, t, at)| (c.to_owned(), (t, at)))
    .collect();
    assert_eq!(
        sent, expected,
        "backups are covered by key deletion: no rule"
    );

    let mut holds: Vec<(String, String, String)> = request
        .holds
        .iter()
        .map(|h| (h.hold_id.clone(), h.subject_id.clone(), h.category.clone()))
        .collect();
    holds.sort();
    let mut expected_holds = vec![
        (hold_ids[0].clone(), subject.clone(), String::new()),
        (hold_ids[1].clone(), String::new(), "billing.record".into()),
    ];
    expected_holds.sort();
    assert_eq!(holds, expected_holds);

    // The run records what it sent.
    assert_eq!(run.rules, request.rules);
    let mut recorded = run.hold_ids.clone();
    recorded.sort();
    let mut placed = hold_ids.clone();
    placed.sort();
    assert_eq!(recorded, placed);
    Ok(())
}
