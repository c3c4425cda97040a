//! Purge runs across the mesh ("How long we keep your information": "We only ever retain
//! personal data for as long as is necessary"): data past its period is gone after a run
//! and data within it stays; a dry run changes nothing; a legal hold blocks the purge and
//! the run says what it skipped and why.

mod support;

use pdm_proto::retention::v1::{
    self as pb, GetPurgeRunRequest, ListLegalHoldsRequest, ListPurgeRunsRequest,
    PlaceLegalHoldRequest, ReleaseLegalHoldRequest, RunStatus,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::start_time;
use support::{
    analytics_user, count, holdings, mesh, run_purge, service, sign_in, status, ticket, usage_event,
};

const SESSION: &str = "account.session";
const TICKET: &str = "support.ticket";
const EVENT: &str = "telemetry.event";

/// Fourteen months on: past the 30 days of a session and the 13 months of a usage event,
/// well within the eight years of a support ticket.
fn fourteen_months_on() -> chrono::DateTime<chrono::Utc> {
    start_time()
        .checked_add_months(chrono::Months::new(14))
        .expect("date")
}

#[tokio::test]
async fn data_past_its_period_is_purged_and_data_within_it_is_kept() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let (ada, a) = analytics_user(&mesh).await?;
    sign_in(&mesh, &ada).await?;
    ticket(&mesh, &ada, &a).await?;
    usage_event(&mesh, &a, clock.now()).await?;
    clock.set(fourteen_months_on());
    sign_in(&mesh, &ada).await?;
    usage_event(&mesh, &a, clock.now()).await?;
    assert_eq!(holdings(&mesh, &a).await?, [2, 1, 2]);

    let mut retention = mesh.retention();
    let (messages, run) = run_purge(&mut retention, false).await?;
    // One message per service, then the finished run.
    assert_eq!(messages.len(), 5, "{messages:?}");
    for (i, message) in messages[..4].iter().enumerate() {
        assert_eq!((message.done, message.total), (i as i32 + 1, 4));
        assert!(message.service.as_ref().is_some_and(|s| s.ok));
    }
    assert!(messages[4].service.is_none());
    assert_eq!(status(&run), RunStatus::Completed);
    assert!(!run.dry_run);
    assert_eq!(run.triggered_by, "dpo@example.org");
    assert_eq!(run.as_of, Some(timestamp(clock.now())));
    assert!(run.finished_at.is_some());
    let names: Vec<&str> = run.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["identity", "consent", "telemetry", "transfers"]);
    assert!(
        run.services
            .iter()
            .all(|s| s.ok && s.attempts == 1 && s.error.is_empty())
    );
    assert_eq!(count(&run, "identity", SESSION), (1, 0, Vec::new()));
    assert_eq!(count(&run, "identity", TICKET), (0, 0, Vec::new()));
    assert_eq!(count(&run, "telemetry", EVENT), (1, 0, Vec::new()));
    assert_eq!(
        count(&run, "transfers", "transfers.log"),
        (0, 0, Vec::new())
    );
    assert_eq!(
        holdings(&mesh, &a).await?,
        [1, 1, 1],
        "the old session and event went; the new ones and the ticket stay"
    );

    // The run is recorded and visible.
    let stored = retention
        .get_purge_run(GetPurgeRunRequest {
            run_id: run.run_id.clone(),
        })
        .await?
        .into_inner()
        .run;
    assert_eq!(stored.as_ref(), Some(&run));
    let listed = retention
        .list_purge_runs(ListPurgeRunsRequest::default())
        .await?
        .into_inner();
    assert_eq!(listed.runs, std::slice::from_ref(&run));
    assert!(listed.next_page_token.is_empty());

    // Nothing more has expired: a second run purges nothing.
    let (_, again) = run_purge(&mut retention, false).await?;
    assert_eq!(count(&again, "identity", SESSION), (0, 0, Vec::new()));
    assert_eq!(count(&again, "telemetry", EVENT), (0, 0, Vec::new()));
    let listed = retention
        .list_purge_runs(ListPurgeRunsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(listed.runs, std::slice::from_ref(&again), "newest first");
    let older = retention
        .list_purge_runs(ListPurgeRunsRequest {
            page_size: 1,
            page_token: listed.next_page_token,
        })
        .await?
        .into_inner();
    assert_eq!(older.runs, [run]);

    mesh.logs().assert_clean(&ada.secrets());
    Ok(())
}

#[tokio::test]
async fn a_dry_run_counts_what_would_go_and_changes_nothing() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let (ada, a) = analytics_user(&mesh).await?;
    sign_in(&mesh, &ada).await?;
    usage_event(&mesh, &a, clock.now()).await?;
    clock.set(fourteen_months_on());
    let before = holdings(&mesh, &a).await?;
    assert_eq!(before, [1, 0, 1]);

    let mut retention = mesh.retention();
    let (messages, preview) = run_purge(&mut retention, true).await?;
    assert_eq!(messages.len(), 5);
    assert!(preview.dry_run);
    assert_eq!(status(&preview), RunStatus::Completed);
    assert_eq!(count(&preview, "identity", SESSION), (1, 0, Vec::new()));
    assert_eq!(count(&preview, "telemetry", EVENT), (1, 0, Vec::new()));
    assert_eq!(
        holdings(&mesh, &a).await?,
        before,
        "a dry run deletes nothing"
    );

    let (_, done) = run_purge(&mut retention, false).await?;
    assert_eq!(
        (
            count(&done, "identity", SESSION),
            count(&done, "telemetry", EVENT)
        ),
        (
            count(&preview, "identity", SESSION),
            count(&preview, "telemetry", EVENT)
        ),
        "the real run does what the preview said"
    );
    assert_eq!(holdings(&mesh, &a).await?, [0, 0, 0]);

    mesh.logs().assert_clean(&ada.secrets());
    Ok(())
}

async fn place(
    retention: &mut support::Client,
    subject: &str,
    category: &str,
) -> anyhow::Result<pb::LegalHold> {
    Ok(retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: subject.to_owned(),
                category: category.to_owned(),
                reason: "Litigation: contract dispute".into(),
                reference: "Case 2027-CV-0042".into(),
                placed_by: "legal@example.org".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .hold
        .expect("hold"))
}

async fn release(retention: &mut support::Client, hold_id: &str) -> anyhow::Result<pb::LegalHold> {
    Ok(retention
        .release_legal_hold(ReleaseLegalHoldRequest {
            hold_id: hold_id.to_owned(),
            released_by: "legal@example.org".into(),
        })
        .await?
        .into_inner()
        .hold
        .expect("hold"))
}

#[tokio::test]
async fn a_legal_hold_blocks_the_purge_and_the_run_reports_what_it_skipped() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let (ada, a) = analytics_user(&mesh).await?;
    let (bob, b) = analytics_user(&mesh).await?;
    for (person, subject) in [(&ada, &a), (&bob, &b)] {
        sign_in(&mesh, person).await?;
        usage_event(&mesh, subject, clock.now()).await?;
    }
    clock.set(fourteen_months_on());
    let mut retention = mesh.retention();

    // A hold on Ada: her records are kept, Bob's go.
    let on_ada = place(&mut retention, &a, "").await?;
    assert_eq!(on_ada.placed_at, Some(timestamp(clock.now())));
    assert!(on_ada.released_at.is_none());
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&run), RunStatus::Completed);
    assert_eq!(run.hold_ids, std::slice::from_ref(&on_ada.hold_id));
    let held = vec![on_ada.hold_id.clone()];
    assert_eq!(count(&run, "identity", SESSION), (1, 1, held.clone()));
    assert_eq!(count(&run, "telemetry", EVENT), (1, 1, held.clone()));
    assert_eq!(holdings(&mesh, &a).await?, [1, 0, 1], "held, not deleted");
    assert_eq!(holdings(&mesh, &b).await?, [0, 0, 0]);

    // A hold on a whole category keeps everyone's events; Ada's session goes once her
    // own hold is released.
    let on_events = place(&mut retention, "", EVENT).await?;
    let released = release(&mut retention, &on_ada.hold_id).await?;
    assert_eq!(released.released_at, Some(timestamp(clock.now())));
    assert_eq!(released.released_by, "legal@example.org");
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(run.hold_ids, std::slice::from_ref(&on_events.hold_id));
    assert_eq!(count(&run, "identity", SESSION), (1, 0, Vec::new()));
    assert_eq!(
        count(&run, "telemetry", EVENT),
        (0, 1, vec![on_events.hold_id.clone()])
    );
    assert_eq!(holdings(&mesh, &a).await?, [0, 0, 1]);

    // Released: the next run purges.
    release(&mut retention, &on_events.hold_id).await?;
    let again = release(&mut retention, &on_events.hold_id).await?;
    assert_eq!(
        again.released_at,
        Some(timestamp(clock.now())),
        "releasing twice keeps the first release"
    );
    let (_, run) = run_purge(&mut retention, false).await?;
    assert!(run.hold_ids.is_empty());
    assert_eq!(count(&run, "telemetry", EVENT), (1, 0, Vec::new()));
    assert_eq!(holdings(&mesh, &a).await?, [0, 0, 0]);

    let active = retention
        .list_legal_holds(ListLegalHoldsRequest::default())
        .await?
        .into_inner()
        .holds;
    assert!(active.is_empty());
    let all = retention
        .list_legal_holds(ListLegalHoldsRequest {
            include_released: true,
            subject_id: String::new(),
        })
        .await?
        .into_inner()
        .holds;
    assert_eq!(all.len(), 2);
    let of_bob = retention
        .list_legal_holds(ListLegalHoldsRequest {
            include_released: true,
            subject_id: b.clone(),
        })
        .await?
        .into_inner()
        .holds;
    assert_eq!(
        of_bob
            .iter()
            .map(|h| h.hold_id.as_str())
            .collect::<Vec<_>>(),
        [on_events.hold_id.as_str()],
        "a subject's holds include those on every subject"
    );
    assert!(service(&run, "identity").ok);

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&bob.secrets());
    mesh.logs()
        .assert_clean(&[("hold reason", "Litigation: contract dispute")]);
    Ok(())
}
