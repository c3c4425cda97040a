//! What the transfers service's tests share: a mesh on a manual clock, a recipient and an
//! SCC that pass every check, and short calls for the common requests.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use pdm_identity::Identity;
use pdm_proto::transfers::v1::{
    self as pb, MechanismKind, PartyRole, RecipientRole, Regime, TiaOutcome,
    transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_transfers::Transfers;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::transport::Channel;

/// A transfers client.
pub type Client = TransfersServiceClient<Channel>;

/// A mesh with the transfers service and identity (which knows which subjects a company
/// client may see), on `clock`.
pub async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Transfers)
        .clock(clock.clone())
        .start()
        .await
}

/// A fresh subject id nobody created: a company client's transfers for it are refused as
/// for an unknown subject, while the mesh's own services may name it.
pub fn subject() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A subject created through identity by the test kit's client (so linked with it).
pub async fn person(mesh: &Mesh) -> anyhow::Result<String> {
    mesh.sign_up(&Person::new()).await
}

/// Strings from literals.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A processor with a DPA, for service provision and support, receiving profiles and
/// tickets.
pub fn recipient(key: &str, country: &str) -> pb::Recipient {
    pb::Recipient {
        key: key.to_owned(),
        name: format!("Recipient {key}"),
        role: RecipientRole::Processor as i32,
        country: country.to_owned(),
        purposes: strings(&["service_provision", "support"]),
        data_categories: strings(&["account.profile", "support.ticket"]),
        contract_reference: format!("DPA-{key}"),
        contract_date: "2024-01-10".to_owned(),
        ..Default::default()
    }
}

/// Registers `recipient` and returns it as stored.
pub async fn register(
    client: &mut Client,
    recipient: pb::Recipient,
) -> anyhow::Result<pb::Recipient> {
    Ok(client
        .register_recipient(pb::RegisterRecipientRequest {
            recipient: Some(recipient),
        })
        .await?
        .into_inner()
        .recipient
        .expect("recipient"))
}

/// EU SCCs, module 2 (controller to processor), in force since 30 days before `now`,
/// reviewed a year after, with a positive impact assessment.
pub fn scc(recipient_id: &str, now: DateTime<Utc>) -> pb::Mechanism {
    pb::Mechanism {
        recipient_id: recipient_id.to_owned(),
        kind: MechanismKind::EuScc as i32,
        scc_module: 2,
        signed_on: "2026-10-30".to_owned(),
        parties: strings(&["DigitalAPICraft (exporter)", "Importer (processor)"]),
        annex_references: strings(&["Annex I.B", "Annex II"]),
        valid_from: Some(timestamp(now - Duration::days(30))),
        review_due: Some(timestamp(now + Duration::days(365))),
        tia: Some(pb::TransferImpactAssessment {
            reference: "TIA-2026-01".to_owned(),
            assessed_on: "2026-10-15".to_owned(),
            outcome: TiaOutcome::AdequateWithMeasures as i32,
            supplementary_measures: strings(&["encryption in transit", "encryption at rest"]),
        }),
        ..Default::default()
    }
}

/// Records `mechanism` and returns it as stored.
pub async fn record(
    client: &mut Client,
    mechanism: pb::Mechanism,
) -> anyhow::Result<pb::Mechanism> {
    Ok(client
        .record_mechanism(pb::RecordMechanismRequest {
            mechanism: Some(mechanism),
        })
        .await?
        .into_inner()
        .mechanism
        .expect("mechanism"))
}

/// A transfer of profiles for service provision, by us as controller.
pub fn transfer(regime: Regime, recipient_id: &str) -> pb::AuthorizeTransferRequest {
    pb::AuthorizeTransferRequest {
        regime: regime as i32,
        recipient_id: recipient_id.to_owned(),
        data_categories: strings(&["account.profile"]),
        purpose: "service_provision".to_owned(),
        exporter_role: PartyRole::Controller as i32,
        ..Default::default()
    }
}

/// Asks for a transfer and returns the decision.
pub async fn authorize(
    client: &mut Client,
    request: pb::AuthorizeTransferRequest,
) -> anyhow::Result<pb::TransferDecision> {
    Ok(client
        .authorize_transfer(request)
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

/// The whole log (at most 1,000 entries), newest first, with `filter`.
pub async fn log(
    client: &mut Client,
    filter: pb::ListTransferLogRequest,
) -> anyhow::Result<Vec<pb::TransferLogEntry>> {
    let page = client
        .list_transfer_log(pb::ListTransferLogRequest {
            page_size: 1000,
            ..filter
        })
        .await?
        .into_inner();
    assert!(page.next_page_token.is_empty(), "more than one page");
    Ok(page.entries)
}

/// Asserts that the log holds exactly `decisions` (allowed and denied alike), each with
/// the outcome the caller was told.
pub async fn assert_logged(
    client: &mut Client,
    decisions: &[pb::TransferDecision],
) -> anyhow::Result<()> {
    let logged: BTreeMap<String, pb::TransferDecision> = log(client, Default::default())
        .await?
        .into_iter()
        .map(|e| (e.log_id.clone(), e.decision.expect("logged decision")))
        .collect();
    assert_eq!(
        logged.len(),
        decisions.len(),
        "every decision is logged, once"
    );
    for d in decisions {
        let entry = logged
            .get(&d.log_id)
            .unwrap_or_else(|| panic!("decision {:?} is not in the log", d.outcome));
        assert_eq!(
            entry, d,
            "the log holds the decision as the caller heard it"
        );
    }
    Ok(())
}

/// The outcome of a decision.
pub fn outcome(d: &pb::TransferDecision) -> pb::Outcome {
    pb::Outcome::try_from(d.outcome).unwrap_or_default()
}

/// Rows of the raw transfer log whose subject is a pseudonym.
pub async fn pseudonymised_rows(db: &DatabaseConnection) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM transfer_log WHERE subject_id LIKE '{}%'",
        pdm_transfers::ERASED_PREFIX
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .expect("a count row");
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n)?)
}
