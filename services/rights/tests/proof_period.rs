//! Rights erases its own records (issue 16; policy, "How long we keep your information":
//! "only ... for as long as is necessary"): once a request's proof period (`rights.request`,
//! two years after it was answered) has ended, its messages, package and submitter are
//! deleted, its key destroyed in the rights key store and its sealed details emptied (so no
//! backup of the rights database opens them), and the row keeps kind, dates and outcome under a
//! keyed pseudonym of the subject; a request still within the period keeps everything.

mod support;

use chrono::{Months, Utc};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::retention::v1::{
    LegalHold, PlaceLegalHoldRequest, retention_service_client::RetentionServiceClient,
};
use pdm_proto::rights::v1::rights_service_client::RightsServiceClient;
use pdm_proto::rights::v1::{self as pb, Regime, RequestKind, Status};
use pdm_retention::Retention;
use pdm_rights::Rights;
use pdm_rights::store::KeyOf;
use pdm_runtime::ManualClock;
use pdm_telemetry::Telemetry;
use pdm_testkit::TestMesh;
use pdm_transfers::Transfers;
use support::{count, person_with_data, submit, wait_closed};

/// The whole mesh on `clock`, purges only when asked, the mailbox file under `dir`.
async fn proof_mesh(
    clock: &std::sync::Arc<ManualClock>,
    dir: &std::path::Path,
) -> anyhow::Result<pdm_testkit::Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Retention)
        .with(Rights)
        .clock(clock.clone())
        .setting("retention.purge_interval_minutes", 0)
        .setting("rights.outbox_file", dir.join("outbox.jsonl").display())
        .start()
        .await
}

/// A new person's access request, answered: `(subject, request id)`.
async fn answered_access(mesh: &pdm_testkit::Mesh) -> anyhow::Result<(String, String)> {
    let (person, subject) = person_with_data(mesh).await?;
    let request = submit(
        mesh,
        support::request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    wait_closed(mesh, &request.request_id).await?;
    Ok((subject, request.request_id))
}

#[tokio::test]
async fn a_request_past_its_proof_period_keeps_only_kind_dates_and_outcome() -> anyhow::Result<()> {
    // Now: the person's usage events are sent with the real time.
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir()?;
    let mut mesh = proof_mesh(&clock, dir.path()).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let request = |kind: RequestKind| support::request(kind, Regime::Gdpr, &subject, &person);
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
    // The request's key is in the rights key store, none in the rights database: a backup
    // of that database taken now holds the sealed details and nothing that opens them.
    let keys = pdm_rights::store::Store::connect(mesh.settings()).await?;
    assert!(
        keys.find_key(KeyOf::Request(&old.request_id))
            .await?
            .is_some()
    );
    for table in ["requests", "child_reports", "concerns"] {
        let wrapped = count(
            &db,
            &format!("SELECT COUNT(*) AS n FROM {table} WHERE length(wrapped_key) > 0"),
            &[],
        )
        .await?;
        assert_eq!(wrapped, 0, "{table} holds wrapped keys");
    }

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
    // Its key is destroyed: what any backup of the rights database holds of it stays shut.
    assert!(
        keys.find_key(KeyOf::Request(&old.request_id))
            .await?
            .is_none()
    );
    assert!(
        keys.find_key(KeyOf::Request(&recent.request_id))
            .await?
            .is_some()
    );
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
        mesh.channel_as("rights", &pdm_tls::identity::Caller::Admin)?,
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

/// The privacy team's clients of rights and retention.
fn as_admin(
    mesh: &pdm_testkit::Mesh,
) -> anyhow::Result<(
    RightsServiceClient<tonic::transport::Channel>,
    RetentionServiceClient<tonic::transport::Channel>,
)> {
    let admin = pdm_tls::identity::Caller::Admin;
    Ok((
        RightsServiceClient::new(mesh.channel_as("rights", &admin)?),
        RetentionServiceClient::new(mesh.channel_as("retention", &admin)?),
    ))
}

#[tokio::test]
async fn a_legal_hold_keeps_its_subjects_requests_and_closed_concerns_are_forgotten_too()
-> anyhow::Result<()> {
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir()?;
    let mut mesh = proof_mesh(&clock, dir.path()).await?;
    let (rights, mut retention) = as_admin(&mesh)?;
    let mut answered = Vec::new();
    for _ in 0..2 {
        answered.push(answered_access(&mesh).await?);
    }
    let [(_, free), (held_subject, held)] = &answered[..] else {
        unreachable!("two requests")
    };
    // Proceedings name the second subject: their records stay, whatever the period says.
    retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(LegalHold {
                subject_id: held_subject.clone(),
                category: "rights.request".into(),
                reason: "Litigation: contract dispute".into(),
                reference: "Case 2027-CV-0042".into(),
                placed_by: "legal@example.org".into(),
                ..Default::default()
            }),
        })
        .await?;
    let concern = mesh
        .rights()
        .report_concern(pb::ReportConcernRequest {
            kind: pb::ConcernKind::Complaint as i32,
            contact_email: "complainant@example.org".into(),
            description: "You emailed me after I unsubscribed.".into(),
            subject_id: String::new(),
        })
        .await?
        .into_inner()
        .concern
        .expect("concern");
    rights
        .clone()
        .close_concern(pb::CloseConcernRequest {
            concern_id: concern.concern_id.clone(),
            outcome: "Apologised; the list is fixed.".into(),
        })
        .await?;

    clock.set(start + Months::new(24) + chrono::Duration::days(1));
    mesh.restart("rights").await?;
    let db = mesh.connect_db("rights").await?;
    let forgotten = |table: &'static str, column: &'static str, id: String| {
        let db = db.clone();
        async move {
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE {column} = ? AND length(details) = 0"
                ),
                &[&id],
            )
            .await
        }
    };
    support::eventually(
        "the proof period's end",
        std::time::Duration::from_secs(30),
        || {
            let (free, concern) = (free.clone(), concern.concern_id.clone());
            let forgotten = &forgotten;
            async move {
                let request = forgotten("requests", "request_id", free).await?;
                let concern = forgotten("concerns", "concern_id", concern).await?;
                Ok((request == 1 && concern == 1).then_some(()))
            }
        },
    )
    .await?;
    assert_eq!(
        forgotten("requests", "request_id", held.clone()).await?,
        0,
        "a held subject's request was forgotten"
    );
    let keys = pdm_rights::store::Store::connect(mesh.settings()).await?;
    assert!(keys.find_key(KeyOf::Request(held)).await?.is_some());
    assert!(keys.find_key(KeyOf::Request(free)).await?.is_none());
    assert!(
        keys.find_key(KeyOf::Concern(&concern.concern_id))
            .await?
            .is_none()
    );
    // The privacy team still sees that the concern was filed and answered, not by whom.
    let listed = rights
        .clone()
        .list_concerns(pb::ListConcernsRequest::default())
        .await?
        .into_inner()
        .concerns;
    let shown = listed
        .iter()
        .find(|c| c.concern_id == concern.concern_id)
        .expect("the concern is still listed");
    assert_eq!(shown.status, pb::ConcernStatus::Closed as i32);
    assert!(shown.contact_email.is_empty() && shown.description.is_empty());
    Ok(())
}

/// Rights' trail entries written before `before` (RFC 3339 date).
async fn trail_before(db: &sea_orm::DatabaseConnection, before: &str) -> anyhow::Result<u64> {
    count(
        db,
        &format!("SELECT COUNT(*) AS n FROM access_log WHERE at < '{before}'"),
        &[],
    )
    .await
}

#[tokio::test]
async fn rights_own_access_trail_keeps_each_access_for_eight_years() -> anyhow::Result<()> {
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir()?;
    let mut mesh = proof_mesh(&clock, dir.path()).await?;
    // A request names its subject: rights' trail records the access.
    answered_access(&mesh).await?;
    let db = mesh.connect_db("rights").await?;
    let later = (start + Months::new(12 * 8)).format("%Y-%m-%d").to_string();
    support::eventually(
        "the access recorded",
        std::time::Duration::from_secs(30),
        || {
            let (db, later) = (db.clone(), later.clone());
            async move { Ok((trail_before(&db, &later).await? > 0).then_some(())) }
        },
    )
    .await?;

    // Eight years and a day on, rights' housekeeping purges its own trail (no purge run
    // reaches it) and the trail still verifies.
    clock.set(start + Months::new(12 * 8) + chrono::Duration::days(1));
    mesh.restart("rights").await?;
    support::eventually(
        "the trail purged",
        std::time::Duration::from_secs(90),
        || {
            let (db, later) = (db.clone(), later.clone());
            async move { Ok((trail_before(&db, &later).await? == 0).then_some(())) }
        },
    )
    .await?;
    let verified = pdm_proto::audit::v1::audit_service_client::AuditServiceClient::new(
        mesh.channel_as("rights", &pdm_tls::identity::Caller::Admin)?,
    )
    .verify_access_log(pdm_proto::audit::v1::VerifyAccessLogRequest::default())
    .await?
    .into_inner();
    assert!(verified.intact, "{:?}", verified.problems);
    Ok(())
}
