//! What the retention service's tests share: the mesh (identity, consent, telemetry,
//! transfers and retention) on a manual clock, people with sessions and usage events,
//! short calls for purge runs, and a SubjectData service whose purges wait at a gate.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use pdm_proto::{
    common::v1::Region,
    consent::v1::{GrantConsentRequest, Source},
    identity::v1::{self as identity_pb, AuthenticateRequest},
    retention::v1::{self as pb, RunStatus, retention_service_client::RetentionServiceClient},
    subject::v1::{
        self as subject_pb,
        subject_data_service_server::{SubjectDataService, SubjectDataServiceServer},
    },
    telemetry::v1::{self as telemetry_pb, EventKind},
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh, assert::rows_where, fake::Person};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, transport::Channel};

/// A setting for [`mesh`].
pub fn set(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

/// A retention client.
pub type Client = RetentionServiceClient<Channel>;

/// Where every test's clock starts.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .expect("date")
}

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

/// Waits until `check` holds, looking every few milliseconds, for at most 30 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(
            started.elapsed() < StdDuration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

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

// === Gated ===

/// A `SubjectDataService` of its own server, whose `PurgeExpired` calls wait until the
/// gate opens and are recorded, so a test can hold a run in progress — no sleeps.
#[derive(Debug)]
pub struct Gated {
    state: Arc<GateState>,
    stop: CancellationToken,
    /// Where it listens.
    pub addr: SocketAddr,
}

#[derive(Debug)]
struct GateState {
    /// Calls that reached the handler.
    calls: watch::Sender<usize>,
    /// Whether calls may return.
    open: watch::Sender<bool>,
    /// The requests received.
    requests: Mutex<Vec<subject_pb::PurgeExpiredRequest>>,
}

/// The handler the gated server runs.
#[derive(Debug, Clone)]
struct GatedService(Arc<GateState>);

impl Gated {
    /// Serves on an ephemeral port, closed.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let gated = Self {
            state: Arc::new(GateState {
                calls: watch::Sender::new(0),
                open: watch::Sender::new(false),
                requests: Mutex::new(Vec::new()),
            }),
            stop: CancellationToken::new(),
            addr: listener.local_addr()?,
        };
        let server = tonic::transport::Server::builder()
            .add_service(SubjectDataServiceServer::new(GatedService(
                gated.state.clone(),
            )))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                gated.stop.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Ok(gated)
    }

    /// The settings that add it to the mesh as the service `name`. The fake serves
    /// plaintext, so the mesh it joins does too (what these tests check is the lease).
    pub fn settings(&self, name: &str) -> Vec<(String, String)> {
        vec![
            ("tls.enabled".to_owned(), "false".to_owned()),
            (
                format!("services.{name}.port"),
                self.addr.port().to_string(),
            ),
            (
                format!("services.{name}.endpoint"),
                format!("http://{}", self.addr),
            ),
            (format!("services.{name}.database_url"), String::new()),
        ]
    }

    /// Lets every waiting and later call return.
    pub fn open(&self) {
        self.state.open.send_replace(true);
    }

    /// Calls received so far.
    pub fn calls(&self) -> usize {
        *self.state.calls.borrow()
    }

    /// Waits until `n` calls have arrived (or fails after 30 seconds).
    pub async fn wait_for_calls(&self, n: usize) -> anyhow::Result<()> {
        let mut rx = self.state.calls.subscribe();
        tokio::time::timeout(StdDuration::from_secs(30), rx.wait_for(|c| *c >= n))
            .await
            .map_err(|_| anyhow::anyhow!("{n} calls did not arrive"))??;
        Ok(())
    }

    /// The requests received.
    pub fn requests(&self) -> Vec<subject_pb::PurgeExpiredRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.open();
        self.stop.cancel();
    }
}

#[tonic::async_trait]
impl SubjectDataService for GatedService {
    type ExportSubjectStream =
        tokio_stream::Empty<Result<subject_pb::ExportSubjectResponse, Status>>;

    async fn export_subject(
        &self,
        _request: Request<subject_pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    async fn erase_subject(
        &self,
        _request: Request<subject_pb::EraseSubjectRequest>,
    ) -> Result<Response<subject_pb::EraseSubjectResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn restrict_subject(
        &self,
        _request: Request<subject_pb::RestrictSubjectRequest>,
    ) -> Result<Response<subject_pb::RestrictSubjectResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn purge_expired(
        &self,
        request: Request<subject_pb::PurgeExpiredRequest>,
    ) -> Result<Response<subject_pb::PurgeExpiredResponse>, Status> {
        let request = request.into_inner();
        self.0
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        self.0.calls.send_modify(|c| *c += 1);
        let mut open = self.0.open.subscribe();
        open.wait_for(|o| *o)
            .await
            .map_err(|_| Status::unavailable("gate gone"))?;
        Ok(Response::new(subject_pb::PurgeExpiredResponse {
            results: request
                .rules
                .iter()
                .map(|r| subject_pb::PurgeResult {
                    category: r.category.clone(),
                    purged: 0,
                    held: 0,
                    hold_ids: Vec::new(),
                })
                .collect(),
        }))
    }
}
