//! Ingestion behind the consent gate ("Information we collect automatically", "Consent
//! to be obtained").

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{GrantConsentRequest, Source, WithdrawConsentRequest},
    telemetry::v1::{
        self as pb, DropReason, EventKind, telemetry_service_client::TelemetryServiceClient,
    },
};
use pdm_telemetry::Telemetry;
use pdm_testkit::{TestMesh, fake::Person};
use tonic::transport::Channel;

fn event(subject: &str) -> pb::Event {
    pb::Event {
        subject_id: subject.to_owned(),
        kind: EventKind::FeatureUsed as i32,
        occurred_at: Some(pdm_runtime::convert::timestamp(chrono::Utc::now())),
        feature: "export".into(),
        device: Some(pb::DeviceContext {
            ip_address: "203.0.113.77".into(),
            os_name: "Linux".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn telemetry(mesh: &pdm_testkit::Mesh) -> TelemetryServiceClient<Channel> {
    TelemetryServiceClient::new(mesh.channel("telemetry"))
}

fn dropped(r: &pb::IngestEventsResponse, reason: DropReason) -> u32 {
    r.dropped
        .iter()
        .filter(|d| d.reason == reason as i32)
        .map(|d| d.count)
        .sum()
}

#[tokio::test]
async fn events_need_analytics_consent_and_a_withdrawal_stops_the_next_batch() -> anyhow::Result<()>
{
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .start()
        .await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut client = telemetry(&mesh);

    let r = client
        .ingest_events(pb::IngestEventsRequest {
            batch_id: "b1".into(),
            events: vec![event(&subject); 3],
        })
        .await?
        .into_inner();
    assert_eq!((r.accepted, dropped(&r, DropReason::NoConsent)), (0, 3));

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
    let r = client
        .ingest_events(pb::IngestEventsRequest {
            batch_id: "b2".into(),
            events: vec![event(&subject); 3],
        })
        .await?
        .into_inner();
    assert_eq!(r.accepted, 3);

    let again = client
        .ingest_events(pb::IngestEventsRequest {
            batch_id: "b2".into(),
            events: vec![event(&subject); 3],
        })
        .await?
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.accepted, 3);

    mesh.consent()
        .withdraw_consent(WithdrawConsentRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            source: Source::WebForm as i32,
            actor: "settings".into(),
        })
        .await?;
    let r = client
        .ingest_events(pb::IngestEventsRequest {
            batch_id: "b3".into(),
            events: vec![event(&subject); 2],
        })
        .await?
        .into_inner();
    assert_eq!((r.accepted, dropped(&r, DropReason::Withdrawn)), (0, 2));

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(
        pdm_testkit::assert::rows(&db, "events").await,
        3,
        "a retried batch is stored once"
    );
    let raw = pdm_testkit::assert::raw_storage(&mesh, "telemetry").await;
    assert!(
        !pdm_testkit::assert::contains(&raw, "203.0.113.77"),
        "the raw IP never reaches storage"
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
