//! The task queue's claim, against the service's own database: replicas claiming at once
//! never take the same task and lose none; a live lease is left alone and a lapsed one is
//! taken over as a new attempt.

mod support;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use pdm_rights::store::{
    RequestStatus, Store, TaskStatus,
    entities::{request, task},
};

const REQUESTS: usize = 40;
const SERVICES: [&str; 3] = ["identity", "consent", "telemetry"];

fn pending_request(id: &str, now: chrono::DateTime<Utc>) -> (request::Model, Vec<task::Model>) {
    let row = request::Model {
        request_id: id.to_owned(),
        client_reference: None,
        kind: "ERASURE".into(),
        regime: "GDPR".into(),
        subject_id: None,
        status: RequestStatus::InProgress,
        priority: 0,
        received_at: now,
        verified_at: Some(now),
        due_at: now + Duration::days(30),
        original_due_at: now + Duration::days(30),
        extension_reason: None,
        confirm_by: None,
        closed_at: None,
        outcome_reason: None,
        wrapped_key: Vec::new(),
        details: Vec::new(),
        trace_parent: None,
        package_expires_at: None,
        updated_at: now,
        deletion_reason: None,
        subject_ref: None,
        forgotten_at: None,
    };
    let tasks = SERVICES
        .iter()
        .map(|service| task::Model {
            request_id: id.to_owned(),
            service: (*service).to_owned(),
            action: "erase".into(),
            status: TaskStatus::Pending,
            priority: 0,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            lease_owner: None,
            last_error: None,
            result: None,
            done_at: None,
            updated_at: now,
        })
        .collect();
    (row, tasks)
}

#[tokio::test]
async fn replicas_claiming_at_once_take_every_task_once_and_a_lapsed_lease_is_taken_over()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    // The service's worker stays out of it: only the claimers below take tasks.
    mesh.stop("rights").await?;
    let now = Utc::now();
    let seeding = Store::connect(mesh.settings()).await?;
    for i in 0..REQUESTS {
        let (row, tasks) = pending_request(&format!("claims-{i:03}"), now);
        seeding.insert_request(row, tasks, None).await?;
    }
    // Two replicas (a pool each), two claim loops on each, small claims.
    let mut claimers = tokio::task::JoinSet::new();
    for replica in ["replica-a", "replica-b"] {
        let store = Store::connect(mesh.settings()).await?;
        for _ in 0..2 {
            let store = store.clone();
            claimers.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_due(now, 7, Duration::minutes(5), replica)
                        .await?;
                    if claimed.is_empty() {
                        return anyhow::Ok(mine);
                    }
                    mine.extend(claimed.into_iter().map(|t| (replica, t)));
                }
            });
        }
    }
    let mut claims: HashMap<(String, String), Vec<&str>> = HashMap::new();
    while let Some(done) = claimers.join_next().await {
        for (replica, t) in done?? {
            assert_eq!(t.status, TaskStatus::Running);
            assert_eq!(t.attempts, 1);
            assert_eq!(t.lease_owner.as_deref(), Some(replica));
            claims
                .entry((t.request_id, t.service))
                .or_default()
                .push(replica);
        }
    }
    assert_eq!(
        claims.len(),
        REQUESTS * SERVICES.len(),
        "every task claimed"
    );
    for (task, by) in &claims {
        assert_eq!(by.len(), 1, "{task:?} claimed by {by:?}");
    }
    // What the claims returned is what is stored.
    let stored = seeding.tasks_of("claims-000").await?;
    for t in &stored {
        let by = &claims[&(t.request_id.clone(), t.service.clone())];
        assert_eq!(t.status, TaskStatus::Running);
        assert_eq!(t.lease_owner.as_deref(), Some(by[0]));
    }
    // Leases still live: nothing to take. Once they lapse, all are taken over, attempt 2.
    let later = seeding
        .claim_due(now + Duration::minutes(4), 1000, Duration::minutes(5), "c")
        .await?;
    assert!(later.is_empty(), "{later:?}");
    let taken = seeding
        .claim_due(now + Duration::minutes(6), 1000, Duration::minutes(5), "c")
        .await?;
    assert_eq!(taken.len(), REQUESTS * SERVICES.len());
    assert!(
        taken
            .iter()
            .all(|t| t.attempts == 2 && t.lease_owner.as_deref() == Some("c"))
    );
    Ok(())
}
