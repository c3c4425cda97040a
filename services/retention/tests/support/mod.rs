//! What the retention service's tests share: the mesh (identity, consent, telemetry,
//! transfers and retention) on a manual clock, people with sessions and usage events,
//! short calls for purge runs (the SubjectData service whose purges wait at a gate is the
//! test kit's [`pdm_testkit::GatedServer`]).
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{collections::BTreeMap, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use pdm_proto::{
    common::v1::Region,
    consent::v1::{GrantConsentRequest, Source},
    identity::v1::{self as identity_pb, AuthenticateRequest},
    retention::v1::{self as pb, RunStatus, retention_service_client::RetentionServiceClient},
    telemetry::v1::{self as telemetry_pb, EventKind},
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh, assert::rows_where, fake::Person};
use tonic::{Status, transport::Channel};

/// A setting for [`mesh`].
pub fn set(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

/// A retention client.
pub type Client = RetentionServiceClient<Channel>;

/// The whole data-holding mesh plus retention, on `clock`, with the scheduler off and
/// `settings` applied.
pub async fn mesh(
    clock: &Arc<ManualClock>,
    settings: Vec<(String, String)>,
) -> anyhow::Result<Mesh> {
    let mut builder = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_transfers::Transfers)
        .with(pdm_retention::Retention)
        .clock(clock.clone())
        .setting("retention.purge_interval_minutes", 0);
    for (key, value) in settings {
        builder = builder.setting(&key, value);
    }
    builder.start().await
}

/// Retention alone (runs ask only what `settings` configure).
pub async fn retention_only(
    clock: &Arc<ManualClock>,
    settings: Vec<(String, String)>,
) -> anyhow::Result<Mesh> {
    let mut builder = TestMesh::new()
        .with(pdm_retention::Retention)
        .clock(clock.clone())
        .setting("retention.purge_interval_minutes", 0);
    for (key, value) in settings {
        builder = builder.setting(&key, value);
    }
    builder.start().await
}

/// A person in the EEA who signed up and agreed to product analytics.
pub async fn analytics_user(mesh: &Mesh) -> anyhow::Result<(Person, String)> {
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "a".repeat(64),
            actor: "cookie-banner".into(),
            occurred_at: None,
        })
        .await?;
    Ok((person, subject))
}

/// Signs `person` in: a session row, dated now on the mesh's clock.
pub async fn sign_in(mesh: &Mesh, person: &Person) -> anyhow::Result<()> {
    mesh.identity()
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?;
    Ok(())
}

/// Sends one usage event of `subject` happening at `at`; checks it was stored.
pub async fn usage_event(mesh: &Mesh, subject: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
    let answer = mesh
        .telemetry()
        .ingest_events(telemetry_pb::IngestEventsRequest {
            batch_id: uuid::Uuid::now_v7().to_string(),
            events: vec![telemetry_pb::Event {
                subject_id: subject.to_owned(),
                kind: EventKind::FeatureUsed as i32,
                occurred_at: Some(timestamp(at)),
                feature: "export".into(),
                ..Default::default()
            }],
        })
        .await?
        .into_inner();
    anyhow::ensure!(answer.accepted == 1, "event not accepted: {answer:?}");
    Ok(())
}

/// Opens a support ticket for `subject`, dated now on the mesh's clock.
pub async fn ticket(mesh: &Mesh, person: &Person, subject: &str) -> anyhow::Result<()> {
    mesh.identity()
        .create_support_ticket(identity_pb::CreateSupportTicketRequest {
            subject_id: subject.to_owned(),
            contact: person.email.clone(),
            summary: "Slow page".into(),
            description: "The settings page takes a minute to load.".into(),
            attachments: Vec::new(),
            special_categories: Vec::new(),
        })
        .await?;
    Ok(())
}

/// `(sessions, tickets, usage events)` of a subject, counted in the services' databases.
pub async fn holdings(mesh: &Mesh, subject: &str) -> anyhow::Result<[u64; 3]> {
    let identity = mesh.connect_db("identity").await?;
    let telemetry = mesh.connect_db("telemetry").await?;
    Ok([
        rows_where(&identity, "sessions", "subject_id", subject).await,
        rows_where(&identity, "support_tickets", "subject_id", subject).await,
        rows_where(&telemetry, "events", "subject_id", subject).await,
    ])
}

/// Runs a purge and returns every progress message and the finished run.
pub async fn run_purge(
    client: &mut Client,
    dry_run: bool,
) -> Result<(Vec<pb::RunPurgeResponse>, pb::PurgeRun), Status> {
    let mut stream = client
        .run_purge(pb::RunPurgeRequest {
            dry_run,
            triggered_by: "dpo@example.org".into(),
        })
        .await?
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    let run = messages
        .last()
        .and_then(|m| m.run.clone())
        .ok_or_else(|| Status::internal("the stream ended without the run"))?;
    Ok((messages, run))
}

/// Retries a run and returns every progress message and the run.
pub async fn retry_purge(
    client: &mut Client,
    run_id: &str,
) -> Result<(Vec<pb::RetryPurgeResponse>, pb::PurgeRun), Status> {
    let mut stream = client
        .retry_purge(pb::RetryPurgeRequest {
            run_id: run_id.to_owned(),
        })
        .await?
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    let run = messages
        .last()
        .and_then(|m| m.run.clone())
        .ok_or_else(|| Status::internal("the stream ended without the run"))?;
    Ok((messages, run))
}

/// A run's status.
pub fn status(run: &pb::PurgeRun) -> RunStatus {
    RunStatus::try_from(run.status).unwrap_or_default()
}

/// One service's result in a run.
pub fn service<'a>(run: &'a pb::PurgeRun, name: &str) -> &'a pb::ServiceResult {
    run.services
        .iter()
        .find(|s| s.service == name)
        .unwrap_or_else(|| panic!("{name} is not in the run: {run:?}"))
}

/// `category -> (purged, held, hold ids)` of one service's result.
pub fn counts(result: &pb::ServiceResult) -> BTreeMap<String, (u64, u64, Vec<String>)> {
    result
        .results
        .iter()
        .map(|r| (r.category.clone(), (r.purged, r.held, r.hold_ids.clone())))
        .collect()
}

/// What `category` of one service's result says: `(purged, held, hold ids)`.
pub fn count(run: &pb::PurgeRun, name: &str, category: &str) -> (u64, u64, Vec<String>) {
    counts(service(run, name))
        .remove(category)
        .unwrap_or_else(|| panic!("{name} reported nothing for {category}: {run:?}"))
}

/// How long the retention tests wait for background work ([`pdm_testkit::eventually_every`]).
pub const WAIT: StdDuration = StdDuration::from_secs(30);

/// How often they look meanwhile.
pub const POLL: StdDuration = StdDuration::from_millis(10);

/// A period.
pub fn period(years: i32, months: i32, days: i32) -> Option<pb::Period> {
    Some(pb::Period {
        years,
        months,
        days,
    })
}

/// Months before `t`.
pub fn months_before(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    t.checked_sub_months(chrono::Months::new(months))
        .expect("date")
}

/// A day.
pub fn days(n: i64) -> Duration {
    Duration::days(n)
}
