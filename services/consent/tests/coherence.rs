//! Decisions served from memory stay coherent with the ledger ("Consent to be obtained":
//! "You may withdraw your consent at any time"): a grant racing a withdrawal never leaves
//! a stale "allowed" behind, and a batch answers exactly what single checks answer.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, ConsentStatus, LedgerEntryKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
};
use pdm_testkit::{TestMesh, assert::field_violations, fake::Person};
use tonic::transport::Channel;

type Client = ConsentServiceClient<Channel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const ROUNDS: usize = 40;

fn grant(subject: &str, purpose: &str) -> pb::GrantConsentRequest {
    pb::GrantConsentRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        source: Source::Api as i32,
        policy_version: "2024-06-28".to_owned(),
        text_hash: TEXT_HASH.to_owned(),
        actor: "checkout".to_owned(),
        occurred_at: None,
    }
}

fn withdraw(subject: &str, purpose: &str) -> pb::WithdrawConsentRequest {
    pb::WithdrawConsentRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        source: Source::Api as i32,
        actor: "settings-page".to_owned(),
    }
}

fn check(subject: &str, purpose: &str) -> pb::CheckProcessingRequest {
    pb::CheckProcessingRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        ..Default::default()
    }
}

async fn decide(
    consent: &mut Client,
    subject: &str,
    purpose: &str,
) -> anyhow::Result<pb::Decision> {
    Ok(consent
        .check_processing(check(subject, purpose))
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

fn item(subject: &str, purpose: &str) -> pb::CheckItem {
    pb::CheckItem {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
    }
}

#[tokio::test]
async fn a_grant_racing_a_withdrawal_never_leaves_a_stale_allowed() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let (mut granters, mut withdrawers, mut checker) = (
        [mesh.consent(), mesh.consent()],
        [mesh.consent(), mesh.consent()],
        mesh.consent(),
    );
    let mut cursor = 0;
    let mut outcomes = [0usize; 2];
    for round in 0..ROUNDS {
        // Grants, withdrawals and a check in flight at once; which write lands last is up
        // to the server. Whatever the order, the ledger's last word is the decision.
        let [g1, g2] = &mut granters;
        let [w1, w2] = &mut withdrawers;
        let (granted, withdrawn, granted_again, withdrawn_again, racing_check) = tokio::join!(
            g1.grant_consent(grant(&subject, "product_analytics")),
            w1.withdraw_consent(withdraw(&subject, "product_analytics")),
            g2.grant_consent(grant(&subject, "product_analytics")),
            w2.withdraw_consent(withdraw(&subject, "product_analytics")),
            checker.check_processing(check(&subject, "product_analytics")),
        );
        granted?;
        withdrawn?;
        granted_again?;
        withdrawn_again?;
        racing_check?;

        let page = checker
            .get_consent_history(pb::GetConsentHistoryRequest {
                subject_id: subject.clone(),
                after_sequence: cursor,
                page_size: 1000,
            })
            .await?
            .into_inner();
        assert_eq!(page.entries.len(), 4, "round {round}: every write recorded");
        let last = page.entries.last().expect("an entry");
        cursor = last.sequence;
        let d = decide(&mut checker, &subject, "product_analytics").await?;
        let state = checker
            .get_consents(pb::GetConsentsRequest {
                subject_id: subject.clone(),
            })
            .await?
            .into_inner();
        let analytics = state
            .purposes
            .iter()
            .find(|p| p.purpose == "product_analytics")
            .expect("product_analytics state");
        if last.kind == LedgerEntryKind::Grant as i32 {
            outcomes[0] += 1;
            assert!(d.allowed, "round {round}: the ledger ends with a grant");
            assert_eq!(d.reason, Reason::ConsentGiven as i32);
            assert_eq!(analytics.consent, ConsentStatus::Granted as i32);
        } else {
            outcomes[1] += 1;
            assert_eq!(last.kind, LedgerEntryKind::Withdraw as i32);
            assert!(
                !d.allowed,
                "round {round}: stale \"allowed\" after the ledger ended with a withdrawal"
            );
            assert_eq!(d.reason, Reason::Withdrawn as i32);
            assert_eq!(analytics.consent, ConsentStatus::Withdrawn as i32);
        }
        // A batch is served from the same state.
        let batch = checker
            .batch_check_processing(pb::BatchCheckProcessingRequest {
                items: vec![item(&subject, "product_analytics")],
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(batch.decisions, [d], "round {round}");
    }
    assert_eq!(outcomes.iter().sum::<usize>(), ROUNDS);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_batch_answers_in_request_order_what_single_checks_answer() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let european = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let american = Person {
        region: Region::Us,
        ..Person::new()
    };
    let eea = mesh.sign_up(&european).await?;
    let us = mesh.sign_up(&american).await?;
    let nobody = uuid::Uuid::now_v7().to_string();
    let mut consent = mesh.consent();
    consent
        .grant_consent(grant(&eea, "marketing_email"))
        .await?;
    consent
        .set_restriction(pb::SetRestrictionRequest {
            subject_id: us.clone(),
            restricted: true,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".to_owned(),
        })
        .await?;

    // Subjects repeat, consecutively and not; one purpose is not in the catalogue.
    let pairs = [
        (&eea, "marketing_email"),
        (&eea, "product_analytics"),
        (&us, "product_analytics"),
        (&eea, "astrology"),
        (&nobody, "support"),
        (&us, "legal_compliance"),
        (&eea, "marketing_email"),
        (&us, "marketing_email"),
        (&eea, "support"),
    ];
    let items: Vec<_> = pairs.iter().map(|(s, p)| item(s, p)).collect();
    let batch = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: items.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(batch.decisions.len(), pairs.len());
    for (i, (subject, purpose)) in pairs.iter().enumerate() {
        let single = decide(&mut consent, subject, purpose).await?;
        assert_eq!(batch.decisions[i], single, "item {i}: {purpose}");
    }
    let reasons: Vec<i32> = batch.decisions.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::ConsentGiven as i32,
            Reason::NoConsent as i32,
            Reason::Restricted as i32,
            Reason::UnknownPurpose as i32,
            Reason::UnknownSubject as i32,
            Reason::OtherLegalBasis as i32,
            Reason::ConsentGiven as i32,
            Reason::Restricted as i32,
            Reason::OtherLegalBasis as i32,
        ]
    );

    // A withdrawal is seen by the very next batch.
    consent
        .withdraw_consent(withdraw(&eea, "marketing_email"))
        .await?;
    let batch = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(batch.decisions[0].reason, Reason::Withdrawn as i32);
    assert_eq!(batch.decisions[6].reason, Reason::Withdrawn as i32);
    mesh.logs().assert_clean(&european.secrets());
    mesh.logs().assert_clean(&american.secrets());
    Ok(())
}

#[tokio::test]
async fn a_batch_takes_at_most_ten_thousand_well_formed_items() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    let full = vec![item(&subject, "support"); 10_000];
    let batch = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: full,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(batch.decisions.len(), 10_000);
    assert!(batch.decisions.iter().all(|d| d.allowed));

    let err = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: vec![item(&subject, "support"); 10_001],
            ..Default::default()
        })
        .await
        .expect_err("too many");
    assert_eq!(field_violations(&err), ["items"]);

    let err = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: Vec::new(),
            ..Default::default()
        })
        .await
        .expect_err("empty");
    assert_eq!(field_violations(&err), ["items"]);

    let err = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: vec![
                item(&subject, "support"),
                item("not-a-uuid", "support"),
                item(&subject, ""),
                item("", "support"),
            ],
            ..Default::default()
        })
        .await
        .expect_err("malformed");
    assert_eq!(
        field_violations(&err),
        [
            "items[1].subject_id",
            "items[2].purpose",
            "items[3].subject_id"
        ]
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
