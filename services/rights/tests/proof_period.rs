//! Rights erases its own records (issue 16; policy, "How long we keep your information":
//! "only ... for as long as is necessary"): once a request's proof period (`rights.request`,
//! two years after it was answered) has ended, its messages, package and submitter are
//! deleted, its sealed details emptied, and the row keeps kind, dates and outcome under a
//! keyed pseudonym of the subject; a request still within the period keeps everything.

mod support;

use chrono::{Months, Utc};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::rights::v1::{self as pb, Regime, RequestKind, Status};
use pdm_retention::Retention;
use pdm_rights::Rights;
use pdm_runtime::ManualClock;
use pdm_telemetry::Telemetry;
use pdm_testkit::TestMesh;
use pdm_transfers::Transfers;
use support::{count, password, person_with_data, submit, wait_closed};

#[tokio::test]
async fn a_request_past_its_proof_period_keeps_only_kind_dates_and_outcome() -> anyhow::Result<()> {
    // Now: the person's usage events are sent with the real time.
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir()?;
    let mut mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Retention)
        .with(Rights)
        .clock(clock.clone())
        .setting("retention.purge_interval_minutes", 0)
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        .start()
        .await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let request = |kind: RequestKind| pb::SubmitRequestRequest {
        kind: kind as i32,
        regime: Regime::Gdpr as i32,
        subject_id: subject.clone(),
        credential: password(&person),
        ..Default::default()
    };
    let old = submit(&mesh, request(RequestKind::Access)).await?;
    let old_done = wait_closed(&mesh, &old.request_id).await?;
    assert_eq!(old_done.status, Status::Completed as i32);
    let db = mesh.connect_db("rights").await?;
    let held = |id: String| {
        let db = db.clone();
        async move {
            let mut out = Vec::new();
            for table in ["outbox", "package_chunks", "request_access"] {
                out.push(
                    count(
                        &db,
                        &format!("SELECT COUNT(*) AS n FROM {table} WHERE request_id = ?"),
                        &[&id],
                    )
                    .await?,
                );
            }
            Ok::<_, anyhow::Error>(out)
        }
    };
    let before = held(old.request_id.clone()).await?;
    assert!(before.iter().all(|n| *n > 0), "{before:?}");

    // Two years and a day after the answer, a second request is answered; a restart runs
    // the housekeeping at once.
    clock.set(start + Months::new(24) + chrono::Duration::days(1));
    let recent = submit(&mesh, request(RequestKind::Access)).await?;
    wait_closed(&mesh, &recent.request_id).await?;
    mesh.restart("rights").await?;
    support::eventually("the proof period's end", std::time::Duration::from_secs(30), || {
        let db = db.clone();
        let id = old.request_id.clone();
        async move {
            let n = count(
                &db,
                "SELECT COUNT(*) AS n FROM requests WHERE request_id = ? AND forgotten_at IS NOT NULL",
                &[&id],
            )
            .await?;
            Ok((n == 1).then_some(()))
        }
    })
    .await?;

    assert_eq!(held(old.request_id.clone()).await?, [0, 0, 0]);
    let named = count(
        &db,
        "SELECT COUNT(*) AS n FROM requests WHERE subject_id = ?",
        &[&subject],
    )
    .await?;
    assert_eq!(named, 1, "only the recent request still names the subject");
    // What proves the request was answered stays, and the privacy team still reads it
    // (the client that submitted it is forgotten with the rest).
    let shown = pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(
        mesh.channel_as("rights", &pdm_runtime::tls::identity::Caller::Admin)?,
    )
    .get_request(pb::GetRequestRequest {
        request_id: old.request_id.clone(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .request
    .expect("request");
    assert_eq!(shown.kind, RequestKind::Access as i32);
    assert_eq!(shown.status, Status::Completed as i32);
    assert_eq!(shown.received_at, old_done.received_at);
    assert_eq!(shown.closed_at, old_done.closed_at);
    assert!(shown.subject_id.is_empty());
    // The recent request keeps everything.
    assert!(
        held(recent.request_id.clone())
            .await?
            .iter()
            .all(|n| *n > 0)
    );
    Ok(())
}
