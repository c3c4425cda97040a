//! The transfers facade against a real transfers service: a transfer asked about and
//! decided in domain types, the register read back, bad input as field violations.

mod support;

use pdm_client::transfers::{Outcome, PartyRole, Regime, Transfer};
use pdm_identity::Identity;
use pdm_proto::transfers::v1 as pb;
use pdm_testkit::TestMesh;
use pdm_transfers::Transfers;
use support::{bad_fields, client};

#[tokio::test]
async fn a_transfer_is_decided_the_register_read_and_bad_input_named() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Transfers)
        .start()
        .await?;
    // The register is the privacy team's: written through the generated client.
    let registered = mesh
        .transfers()
        .register_recipient(pb::RegisterRecipientRequest {
            recipient: Some(pb::Recipient {
                key: "backup-gmbh".to_owned(),
                name: "Backup GmbH".to_owned(),
                role: pb::RecipientRole::Processor as i32,
                country: "DE".to_owned(),
                purposes: vec!["service_provision".to_owned()],
                data_categories: vec!["account.profile".to_owned()],
                contract_reference: "DPA-1".to_owned(),
                contract_date: "2024-01-10".to_owned(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .ok_or_else(|| anyhow::anyhow!("no recipient"))?;
    let transfers = client(&mesh)?.transfers()?;

    let transfer = Transfer {
        regime: Regime::Eu,
        recipient_id: registered.recipient_id.clone(),
        data_categories: vec!["account.profile".to_owned()],
        purpose: "service_provision".to_owned(),
        subject_id: None,
        exporter_role: PartyRole::Controller,
        reference: "nightly-backup".to_owned(),
        legal_order: None,
    };
    let decision = transfers.authorize(&transfer).await?;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.outcome, Outcome::AllowedWithinRegime);
    assert!(!decision.log_id.is_empty() && decision.decided_at.is_some());

    let recipients = transfers.list_recipients(None, Some("DE")).await?;
    assert_eq!(recipients.len(), 1, "{recipients:?}");
    assert_eq!(recipients[0].key, "backup-gmbh");
    assert!(
        transfers
            .list_recipients(None, Some("FR"))
            .await?
            .is_empty()
    );
    assert!(transfers.list_mechanisms(None).await?.is_empty());
    assert!(transfers.list_expiring_mechanisms(30).await?.is_empty());
    let lists = transfers.list_adequacy().await?;
    assert!(
        lists
            .iter()
            .any(|l| l.regime == Regime::Eu && l.countries.iter().any(|c| c.country == "JP")),
        "{lists:?}"
    );

    let fields = bad_fields(
        transfers
            .authorize(&Transfer {
                regime: Regime::Unspecified,
                data_categories: Vec::new(),
                ..transfer
            })
            .await,
    );
    assert_eq!(fields, ["data_categories", "regime"]);
    Ok(())
}
