//! What the incidents service's tests share: a mesh with the incidents service on a
//! manual clock, reached as the privacy team (`admin`), and a set of details that passes
//! every check.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pdm_incidents::Incidents;
use pdm_proto::incidents::v1::{
    self as pb, Nature, RiskLevel, incidents_service_client::IncidentsServiceClient,
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh};
use pdm_tls::identity::Caller;
use tonic::transport::Channel;

/// An incidents client.
pub type Client = IncidentsServiceClient<Channel>;

/// A description holding personal data, to look for in the logs.
pub const DESCRIPTION: &str = "Export of 312 rows sent to the wrong partner; first row: Ada Lovelace <ada.lovelace@example.org>, +44 20 7946 0958";

/// A mesh with the incidents service on `clock`, with extra settings.
pub async fn mesh_with(
    clock: &Arc<ManualClock>,
    settings: &[(&str, &str)],
) -> anyhow::Result<Mesh> {
    let mut mesh = TestMesh::new().with(Incidents).clock(clock.clone());
    for (key, value) in settings {
        mesh = mesh.setting(key, value);
    }
    mesh.start().await
}

/// A mesh with the incidents service on `clock`.
pub async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    mesh_with(clock, &[]).await
}

/// A client as the privacy team.
pub fn admin(mesh: &Mesh) -> anyhow::Result<Client> {
    Ok(IncidentsServiceClient::new(
        mesh.channel_as("incidents", &Caller::Admin)?,
    ))
}

/// Strings from literals.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Details that pass every check: detected an hour before `now`, aware half an hour
/// later, not assessed yet, under GDPR and UK GDPR.
pub fn details(now: DateTime<Utc>) -> pb::IncidentDetails {
    pb::IncidentDetails {
        title: "Partner export sent to the wrong recipient".into(),
        detected_at: Some(timestamp(now - Duration::hours(1))),
        aware_at: Some(timestamp(now - Duration::minutes(30))),
        description: DESCRIPTION.into(),
        natures: vec![Nature::Confidentiality as i32],
        data_categories: strings(&["account.profile", "support.ticket"]),
        services: strings(&["identity"]),
        window_start: Some(timestamp(now - Duration::days(2))),
        window_end: None,
        approximate_subjects: 312,
        approximate_records: 312,
        likely_consequences: "Phishing aimed at the people concerned.".into(),
        measures_taken: "Partner asked to delete the file; deletion confirmed.".into(),
        risk: RiskLevel::Unspecified as i32,
        risk_reasoning: String::new(),
        regimes: strings(&["gdpr", "uk_gdpr"]),
    }
}

/// Opens an incident with `details`.
pub async fn open(
    client: &mut Client,
    details: pb::IncidentDetails,
) -> anyhow::Result<pb::Incident> {
    Ok(client
        .open_incident(pb::OpenIncidentRequest {
            details: Some(details),
            actor: "dpo-office".into(),
        })
        .await?
        .into_inner()
        .incident
        .expect("incident"))
}

/// Records a notification of `phase` for `regime`, sent at `sent_at`.
pub async fn notify(
    client: &mut Client,
    incident_id: &str,
    regime: &str,
    phase: pb::Phase,
    sent_at: DateTime<Utc>,
    delay_reason: &str,
) -> Result<pb::RecordAuthorityNotificationResponse, tonic::Status> {
    client
        .record_authority_notification(pb::RecordAuthorityNotificationRequest {
            incident_id: incident_id.to_owned(),
            regime: regime.to_owned(),
            phase: phase as i32,
            sent_at: Some(timestamp(sent_at)),
            content: format!("{} notification for {regime}", phase.as_str_name()),
            reference: format!("CASE-{regime}"),
            delay_reason: delay_reason.to_owned(),
            actor: "dpo-office".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The state of `regime`'s deadline in `incident`.
pub fn state(incident: &pb::Incident, regime: &str) -> pb::DeadlineState {
    incident
        .deadlines
        .iter()
        .find(|d| d.regime == regime)
        .map(|d| d.state())
        .expect("deadline of the regime")
}
