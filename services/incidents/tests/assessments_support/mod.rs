//! What the impact-assessment tests share: a mesh of the incidents and transfers services
//! on one manual clock, the register reached as the privacy team (`admin`), an assessment
//! that passes every check, and transfer mechanisms with a TIA.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pdm_incidents::Incidents;
use pdm_proto::{
    incidents::v1::{
        self as pb, AssessmentOutcome, ResidualRisk,
        assessments_service_client::AssessmentsServiceClient,
    },
    transfers::v1::{self as tpb, MechanismKind, PartyRole, RecipientRole, Regime, TiaOutcome},
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh};
use pdm_tls::identity::Caller;
use pdm_transfers::Transfers;
use tonic::transport::Channel;

/// An assessments client.
pub type Client = AssessmentsServiceClient<Channel>;

/// DPO advice naming a person, to look for in the logs.
pub const ADVICE: &str =
    "Proceed once Grace Hopper <grace.hopper@example.org> has sealed the payloads.";

/// The incidents and transfers services on `clock`.
pub async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Transfers)
        .with(Incidents)
        .clock(clock.clone())
        .start()
        .await
}

/// The register as the privacy team.
pub fn admin(mesh: &Mesh) -> anyhow::Result<Client> {
    Ok(AssessmentsServiceClient::new(
        mesh.channel_as("incidents", &Caller::Admin)?,
    ))
}

/// An assessment made at `now`, reviewed in `review_in`.
pub fn details(now: DateTime<Utc>, review_in: Duration) -> pb::AssessmentDetails {
    pb::AssessmentDetails {
        title: "Crash reports with device facts".into(),
        processing: "Crash reports with the device facts, kept for 12 months.".into(),
        purposes: vec!["crash_reporting".into()],
        data_categories: vec!["telemetry.crash".into()],
        risks: vec!["A crash payload may hold what the person typed.".into()],
        measures: vec!["Payloads sealed under the subject's key.".into()],
        residual_risk: ResidualRisk::Low as i32,
        dpo_advice: ADVICE.into(),
        dpo_advice_followed: true,
        advice_departure_reason: String::new(),
        outcome: AssessmentOutcome::ProceedWithMeasures as i32,
        assessed_at: Some(timestamp(now - Duration::days(1))),
        next_review_at: Some(timestamp(now + review_in)),
        late_review_reason: String::new(),
    }
}

/// Records a new assessment.
pub async fn record(
    client: &mut Client,
    details: pb::AssessmentDetails,
) -> Result<pb::Assessment, tonic::Status> {
    let answer = client
        .record_assessment(pb::RecordAssessmentRequest {
            assessment_id: String::new(),
            details: Some(details),
            actor: "dpo-office".into(),
            expected_version: 0,
        })
        .await?
        .into_inner();
    assert!(answer.created);
    answer
        .assessment
        .ok_or_else(|| tonic::Status::internal("no assessment"))
}

/// Registers a recipient in Germany; returns its id.
pub async fn recipient(mesh: &Mesh) -> anyhow::Result<String> {
    let recipient = mesh
        .transfers()
        .register_recipient(tpb::RegisterRecipientRequest {
            recipient: Some(tpb::Recipient {
                key: "hosting-in".to_owned(),
                name: "Hosting IN".to_owned(),
                role: RecipientRole::Processor as i32,
                country: "IN".to_owned(),
                purposes: vec!["service_provision".to_owned()],
                data_categories: vec!["account.profile".to_owned()],
                contract_reference: "DPA-hosting-in".to_owned(),
                contract_date: "2024-01-10".to_owned(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .ok_or_else(|| anyhow::anyhow!("no recipient"))?;
    Ok(recipient.recipient_id)
}

/// Records an active EU SCC mechanism for `recipient` reviewed at `review_due`, with a
/// TIA (`reference`) or without one (empty); returns its id.
pub async fn mechanism(
    mesh: &Mesh,
    recipient: &str,
    review_due: DateTime<Utc>,
    reference: &str,
) -> anyhow::Result<String> {
    let tia = (!reference.is_empty()).then(|| tpb::TransferImpactAssessment {
        reference: reference.to_owned(),
        assessed_on: "2026-01-10".to_owned(),
        outcome: TiaOutcome::Adequate as i32,
        supplementary_measures: vec!["encryption at rest".to_owned()],
    });
    let mechanism = mesh
        .transfers()
        .record_mechanism(tpb::RecordMechanismRequest {
            mechanism: Some(tpb::Mechanism {
                recipient_id: recipient.to_owned(),
                kind: MechanismKind::EuScc as i32,
                regimes: vec![Regime::Eu as i32],
                scc_module: 2,
                exporter_role: PartyRole::Controller as i32,
                signed_on: "2026-01-10".to_owned(),
                parties: vec!["DigitalAPICraft".to_owned(), "Hosting IN".to_owned()],
                annex_references: vec!["Annex I.B".to_owned()],
                valid_from: Some(timestamp(review_due - Duration::days(400))),
                review_due: Some(timestamp(review_due)),
                status: tpb::MechanismStatus::Active as i32,
                tia,
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .mechanism
        .ok_or_else(|| anyhow::anyhow!("no mechanism"))?;
    Ok(mechanism.mechanism_id)
}
