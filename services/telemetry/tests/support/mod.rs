//! What the telemetry service's tests share: a mesh of identity, consent and telemetry on
//! a manual clock, people with or without analytics consent, event builders, and short
//! calls for ingestion, export and erasure.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        GrantConsentRequest, RecordObjectionRequest, SetRestrictionRequest, Source,
        WithdrawConsentRequest,
    },
    subject::v1::{EraseSubjectRequest, ErasureReceipt, ExportSubjectRequest, SubjectRecord},
    telemetry::v1::{
        self as pb, DropReason, EventKind, telemetry_service_client::TelemetryServiceClient,
    },
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_telemetry::Telemetry;
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use tonic::transport::Channel;

/// A telemetry client.
pub type Client = TelemetryServiceClient<Channel>;

/// The purpose telemetry is gated on.
pub const ANALYTICS: &str = "product_analytics";
/// The address every test device reports: it must never reach storage or logs.
pub const RAW_IP: &str = "203.0.113.77";
/// Its /24 network: what is stored instead.
pub const IP_NETWORK: &str = "203.0.113.0";

/// The day of [`pdm_testkit::start_time`], as aggregates name it.
pub const DAY: &str = "2026-11-29";

/// The clock's current time.
pub fn now(clock: &Arc<ManualClock>) -> DateTime<Utc> {
    clock.as_ref().now()
}

/// Identity, consent and telemetry on `clock`, with telemetry `settings` overridden.
pub async fn mesh_with(
    clock: &Arc<ManualClock>,
    settings: &[(&str, &str)],
) -> anyhow::Result<Mesh> {
    let mut mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .clock(clock.clone());
    for (key, value) in settings {
        mesh = mesh.setting(key, value);
    }
    mesh.start().await
}

/// Identity, consent and telemetry on `clock`.
pub async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    mesh_with(clock, &[]).await
}

/// A made-up person living in `region`.
pub fn person_in(region: Region) -> Person {
    Person {
        region,
        ..Person::new()
    }
}

/// Signs up a person in `region` and returns them with their subject id.
pub async fn sign_up(mesh: &Mesh, region: Region) -> anyhow::Result<(Person, String)> {
    let person = person_in(region);
    let subject = mesh.sign_up(&person).await?;
    Ok((person, subject))
}

/// Signs up an EEA person who agreed to product analytics.
pub async fn consenting(mesh: &Mesh) -> anyhow::Result<(Person, String)> {
    let (person, subject) = sign_up(mesh, Region::Eea).await?;
    grant(mesh, &subject).await?;
    Ok((person, subject))
}

/// Records the subject's consent to product analytics.
pub async fn grant(mesh: &Mesh, subject: &str) -> anyhow::Result<()> {
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: ANALYTICS.into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "a".repeat(64),
            actor: "cookie-banner".into(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

/// Records the withdrawal of the subject's consent to product analytics.
pub async fn withdraw(mesh: &Mesh, subject: &str) -> anyhow::Result<()> {
    mesh.consent()
        .withdraw_consent(WithdrawConsentRequest {
            subject_id: subject.to_owned(),
            purpose: ANALYTICS.into(),
            source: Source::WebForm as i32,
            actor: "settings".into(),
        })
        .await?;
    Ok(())
}

/// Records (or withdraws) the subject's objection to product analytics.
pub async fn object(mesh: &Mesh, subject: &str, withdraw: bool) -> anyhow::Result<()> {
    mesh.consent()
        .record_objection(RecordObjectionRequest {
            subject_id: subject.to_owned(),
            purpose: ANALYTICS.into(),
            withdraw,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".into(),
        })
        .await?;
    Ok(())
}

/// Restricts (or lifts the restriction of) the subject's processing in consent.
pub async fn restrict_in_consent(
    mesh: &Mesh,
    subject: &str,
    restricted: bool,
) -> anyhow::Result<()> {
    mesh.consent()
        .set_restriction(SetRestrictionRequest {
            subject_id: subject.to_owned(),
            restricted,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".into(),
        })
        .await?;
    Ok(())
}

/// A device with every field the contract knows, reporting [`RAW_IP`].
pub fn device(device_id: &str) -> pb::DeviceContext {
    pb::DeviceContext {
        connection: pb::ConnectionType::Wifi as i32,
        locale: "en-GB".into(),
        time_zone: "Europe/London".into(),
        os_name: "Linux".into(),
        os_version: "6.8".into(),
        browser_name: "Firefox".into(),
        browser_version: "133.0".into(),
        app_version: "4.2.1".into(),
        ip_address: RAW_IP.into(),
        referrer_url: "https://search.example/results?q=ada+lovelace&utm_source=mail#top".into(),
        exit_url: "https://docs.example.com/guide?session=abc123".into(),
        device_id: device_id.to_owned(),
        global_privacy_control: false,
    }
}

/// A FEATURE_USED event for `feature` at `at` (empty subject: anonymous).
pub fn feature(subject: &str, name: &str, at: DateTime<Utc>) -> pb::Event {
    pb::Event {
        subject_id: subject.to_owned(),
        kind: EventKind::FeatureUsed as i32,
        occurred_at: Some(timestamp(at)),
        feature: name.to_owned(),
        device: Some(pb::DeviceContext {
            ip_address: RAW_IP.into(),
            os_name: "Linux".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A FEATURE_USED event ("export") at `at`.
pub fn event(subject: &str, at: DateTime<Utc>) -> pb::Event {
    feature(subject, "export", at)
}

/// `n` copies of [`event`].
pub fn events(subject: &str, at: DateTime<Utc>, n: usize) -> Vec<pb::Event> {
    vec![event(subject, at); n]
}

/// Sends a batch.
pub async fn ingest(
    client: &mut Client,
    batch_id: &str,
    events: Vec<pb::Event>,
) -> Result<pb::IngestEventsResponse, tonic::Status> {
    client
        .ingest_events(pb::IngestEventsRequest {
            batch_id: batch_id.to_owned(),
            events,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Events dropped for `reason`.
pub fn dropped(r: &pb::IngestEventsResponse, reason: DropReason) -> u32 {
    r.dropped
        .iter()
        .filter(|d| d.reason == reason as i32)
        .map(|d| d.count)
        .sum()
}

/// Every dropped event, whatever the reason.
pub fn dropped_total(r: &pb::IngestEventsResponse) -> u32 {
    r.dropped.iter().map(|d| d.count).sum()
}

/// The subject's export from telemetry.
pub async fn export(mesh: &Mesh, subject: &str) -> anyhow::Result<Vec<SubjectRecord>> {
    let mut stream = mesh
        .subject_data("telemetry")
        .export_subject(ExportSubjectRequest {
            subject_id: subject.to_owned(),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        records.extend(message.record);
    }
    Ok(records)
}

/// Erases the subject from telemetry and returns the receipt.
pub async fn erase(mesh: &Mesh, request_id: &str, subject: &str) -> anyhow::Result<ErasureReceipt> {
    mesh.subject_data("telemetry")
        .erase_subject(EraseSubjectRequest {
            request_id: request_id.to_owned(),
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .receipt
        .ok_or_else(|| anyhow::anyhow!("EraseSubject returned no receipt"))
}

/// How long the telemetry tests wait for work the service does in the background
/// ([`pdm_testkit::eventually`]).
pub const WAIT: StdDuration = StdDuration::from_secs(10);

/// The person's secrets, plus the raw IP and any other values that must not be logged.
pub fn secrets<'a>(
    person: &'a Person,
    extra: &[(&'static str, &'a str)],
) -> Vec<(&'static str, &'a str)> {
    let mut all = person.secrets();
    all.push(("raw IP address", RAW_IP));
    all.extend_from_slice(extra);
    all
}

/// A crash report at `at` for `subject` (empty: anonymous) with `message` and `stack`.
pub fn crash(
    subject: &str,
    at: DateTime<Utc>,
    message: &str,
    stack: &str,
) -> pb::ReportCrashRequest {
    pb::ReportCrashRequest {
        subject_id: subject.to_owned(),
        error_type: "NullPointerException".into(),
        message: message.to_owned(),
        stack_trace: stack.to_owned(),
        occurred_at: Some(timestamp(at)),
        device: Some(device("crash-device")),
    }
}

/// Sends a crash report.
pub async fn report_crash(
    client: &mut Client,
    request: pb::ReportCrashRequest,
) -> Result<pb::ReportCrashResponse, tonic::Status> {
    client
        .report_crash(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The SHA-256 of the cookie banner's text, as recorded with a tracking choice.
pub const BANNER_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// `event` marked strictly necessary (it needs no agreement).
pub fn necessary(event: pb::Event) -> pb::Event {
    pb::Event {
        tracking: pb::TrackingCategory::StrictlyNecessary as i32,
        ..event
    }
}

/// A logged-out visitor's FEATURE_USED event ("export") from `device_id`, tracking for
/// `category`.
pub fn visitor(device_id: &str, category: pb::TrackingCategory, at: DateTime<Utc>) -> pb::Event {
    let mut e = event("", at);
    e.tracking = category as i32;
    if let Some(d) = e.device.as_mut() {
        d.device_id = device_id.to_owned();
    }
    e
}

/// Records a logged-out device's choice.
pub async fn choose(
    client: &mut Client,
    device_id: &str,
    (analytics, advertising, gpc): (bool, bool, bool),
) -> Result<pb::TrackingChoice, tonic::Status> {
    client
        .record_tracking_choice(pb::RecordTrackingChoiceRequest {
            device_id: device_id.to_owned(),
            analytics,
            advertising,
            global_privacy_control: gpc,
            policy_version: "cookies-2024-06".into(),
            text_hash: BANNER_HASH.into(),
        })
        .await
        .map(|r| r.into_inner().choice.unwrap_or_default())
}
