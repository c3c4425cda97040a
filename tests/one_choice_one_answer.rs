//! One choice, one answer: every API that acts on a person's choices answers from the
//! consent service's one decision function, so after any choice they all agree. Each test
//! is a row of the README's table "One choice, one answer" (consent choice × API); each
//! cell is asserted, and the README row must say what the test proves.
//!
//! Policy clauses: "you can opt out of receiving marketing communications from us"
//! ("Marketing Our Services"), "CCPA Privacy Rights (Do Not Sell My Personal
//! Information)", the rights to object, to restrict and to withdraw consent ("Your Data
//! Protection Rights Under GDPR"), and consent for product analytics ("With Your
//! Consent").

use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as consent_pb, BatchCheckProcessingRequest, CanContactRequest, Channel, CheckItem,
        CheckProcessingRequest, MessageKind, Reason, Source,
    },
    telemetry::v1::{self as telemetry_pb, DropReason, EventKind},
    transfers::v1::{self as transfers_pb, Outcome, PartyRole, RecipientRole, Regime},
};
use pdm_runtime::convert::timestamp;
use pdm_testkit::{Mesh, TestMesh, fake::Person};

/// A choice a person makes (a row of the table).
#[derive(Debug, Clone, Copy)]
enum Choice {
    /// Nothing recorded.
    Nothing,
    /// Consent to marketing email, advertising and product analytics.
    Consented,
    /// That consent, then withdrawn.
    Withdrawn,
    /// That consent, then an objection to direct marketing (email and advertising; in the
    /// EEA product analytics rests on consent, so withdrawing is the way out of it).
    Objected,
    /// That consent, then "do not sell or share".
    DoNotSell,
    /// That consent, then an opt-out of promotional email.
    EmailOptOut,
    /// That consent, then a restriction of processing.
    Restricted,
}

impl Choice {
    /// The row's first cell in the README.
    fn label(self) -> &'static str {
        match self {
            Self::Nothing => "nothing recorded",
            Self::Consented => "consent to the three purposes",
            Self::Withdrawn => "consent, then withdrawn",
            Self::Objected => "consent, then an objection to direct marketing",
            Self::DoNotSell => "consent, then do not sell or share",
            Self::EmailOptOut => "consent, then an email opt-out",
            Self::Restricted => "consent, then a restriction",
        }
    }
}

/// The purposes the person consents to (all consent-based in the EEA).
const PURPOSES: [&str; 3] = ["marketing_email", "marketing_ads", "product_analytics"];

/// The table's columns, in order.
const COLUMNS: [&str; 6] = [
    "CheckProcessing(marketing_email)",
    "BatchCheckProcessing(marketing_email)",
    "CanContact(EMAIL, PROMOTIONAL)",
    "CheckProcessing(marketing_ads)",
    "IngestEvents (telemetry's gate, product_analytics)",
    "AuthorizeTransfer(ad partner, marketing_ads)",
];

fn source() -> i32 {
    Source::WebForm as i32
}

async fn record(mesh: &Mesh, subject: &str, choice: Choice) -> anyhow::Result<()> {
    let mut consent = mesh.consent();
    if matches!(choice, Choice::Nothing) {
        return Ok(());
    }
    for purpose in PURPOSES {
        consent
            .grant_consent(consent_pb::GrantConsentRequest {
                subject_id: subject.to_owned(),
                purpose: purpose.to_owned(),
                source: source(),
                policy_version: "2024-06-28".into(),
                text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
                    .into(),
                actor: "consent-banner".into(),
                occurred_at: None,
            })
            .await?;
    }
    let actor = || "privacy-settings".to_owned();
    match choice {
        Choice::Nothing | Choice::Consented => {}
        Choice::Withdrawn => {
            for purpose in PURPOSES {
                consent
                    .withdraw_consent(consent_pb::WithdrawConsentRequest {
                        subject_id: subject.to_owned(),
                        purpose: purpose.to_owned(),
                        source: source(),
                        actor: actor(),
                    })
                    .await?;
            }
        }
        Choice::Objected => {
            for purpose in ["marketing_email", "marketing_ads"] {
                consent
                    .record_objection(consent_pb::RecordObjectionRequest {
                        subject_id: subject.to_owned(),
                        purpose: purpose.to_owned(),
                        withdraw: false,
                        source: source(),
                        actor: actor(),
                    })
                    .await?;
            }
        }
        Choice::DoNotSell => {
            consent
                .set_do_not_sell(consent_pb::SetDoNotSellRequest {
                    subject_id: subject.to_owned(),
                    do_not_sell: true,
                    source: source(),
                    actor: actor(),
                })
                .await?;
        }
        Choice::EmailOptOut => {
            consent
                .set_contact_preference(consent_pb::SetContactPreferenceRequest {
                    subject_id: subject.to_owned(),
                    channel: Channel::Email as i32,
                    opted_out: true,
                    source: source(),
                    actor: actor(),
                })
                .await?;
        }
        Choice::Restricted => {
            consent
                .set_restriction(consent_pb::SetRestrictionRequest {
                    subject_id: subject.to_owned(),
                    restricted: true,
                    source: source(),
                    actor: actor(),
                })
                .await?;
        }
    }
    Ok(())
}

/// "allowed", or "denied: " and the reason without its enum prefix.
fn cell(allowed: bool, reason: &str) -> String {
    if allowed {
        "allowed".to_owned()
    } else {
        let reason = ["REASON_", "DROP_REASON_"]
            .iter()
            .find_map(|p| reason.strip_prefix(p))
            .unwrap_or(reason);
        format!("denied: {reason}")
    }
}

fn decision_cell(decision: Option<consent_pb::Decision>) -> String {
    let d = decision.unwrap_or_default();
    cell(
        d.allowed,
        Reason::try_from(d.reason).unwrap_or_default().as_str_name(),
    )
}

/// An advertising partner in the register, as seeded (`seed/transfers.toml`, google-ads):
/// an independent controller in Ireland receiving profiles for advertising.
async fn ad_partner(mesh: &Mesh) -> anyhow::Result<String> {
    let recipient = mesh
        .transfers()
        .register_recipient(transfers_pb::RegisterRecipientRequest {
            recipient: Some(transfers_pb::Recipient {
                key: "google-ads".into(),
                name: "Google Ireland Limited (advertising partner)".into(),
                role: RecipientRole::IndependentController as i32,
                country: "IE".into(),
                purposes: vec!["marketing_ads".into(), "sale_or_share".into()],
                data_categories: vec!["account.profile".into()],
                contract_reference: "Google Ads controller-controller terms".into(),
                contract_date: "2023-09-01".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .unwrap_or_default();
    Ok(recipient.recipient_id)
}

/// What every API answers for `subject` now, column by column.
async fn answers(mesh: &Mesh, subject: &str, partner: &str) -> anyhow::Result<Vec<String>> {
    let mut consent = mesh.consent();
    let check = |purpose: &str| CheckProcessingRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        ..Default::default()
    };
    let email = consent.check_processing(check("marketing_email")).await?;
    let batch = consent
        .batch_check_processing(BatchCheckProcessingRequest {
            items: vec![CheckItem {
                subject_id: subject.to_owned(),
                purpose: "marketing_email".into(),
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let contact = consent
        .can_contact(CanContactRequest {
            subject_id: subject.to_owned(),
            channel: Channel::Email as i32,
            kind: MessageKind::Promotional as i32,
            ..Default::default()
        })
        .await?;
    let ads = consent.check_processing(check("marketing_ads")).await?;

    let ingested = mesh
        .telemetry()
        .ingest_events(telemetry_pb::IngestEventsRequest {
            batch_id: "one-choice-one-answer".into(),
            events: vec![telemetry_pb::Event {
                subject_id: subject.to_owned(),
                kind: EventKind::FeatureUsed as i32,
                occurred_at: Some(timestamp(chrono::Utc::now())),
                feature: "export".into(),
                ..Default::default()
            }],
        })
        .await?
        .into_inner();
    let gate = match ingested.dropped.first() {
        Some(drop) => cell(
            false,
            DropReason::try_from(drop.reason)
                .unwrap_or_default()
                .as_str_name(),
        ),
        None => cell(ingested.accepted == 1, "accepted nothing"),
    };

    let transfer = mesh
        .transfers()
        .authorize_transfer(transfers_pb::AuthorizeTransferRequest {
            regime: Regime::Eu as i32,
            recipient_id: partner.to_owned(),
            data_categories: vec!["account.profile".into()],
            purpose: "marketing_ads".into(),
            subject_id: subject.to_owned(),
            exporter_role: PartyRole::Controller as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .unwrap_or_default();
    let transfer = match Outcome::try_from(transfer.outcome).unwrap_or_default() {
        Outcome::DeniedSubjectChoice => {
            // The consent service's reason, as the decision's detail names it.
            let reason = transfer
                .detail
                .split(['(', ')'])
                .find(|part| part.starts_with("REASON_"))
                .unwrap_or("REASON_UNSPECIFIED")
                .to_owned();
            cell(false, &reason)
        }
        other => cell(transfer.allowed, other.as_str_name()),
    };

    Ok(vec![
        decision_cell(email.into_inner().decision),
        decision_cell(batch.decisions.into_iter().next()),
        decision_cell(contact.into_inner().decision),
        decision_cell(ads.into_inner().decision),
        gate,
        transfer,
    ])
}

/// The README's table, as rows of cells (the header and the rule line left out).
fn readme_rows() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let table = readme
        .split("### One choice, one answer")
        .nth(1)
        .expect("README has the section \"One choice, one answer\"");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn row(choice: Choice, expected: [&str; 6]) -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .with(pdm_telemetry::Telemetry)
        .with(pdm_transfers::Transfers)
        .start()
        .await?;
    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;
    let partner = ad_partner(&mesh).await?;
    record(&mesh, &subject, choice).await?;
    let got = answers(&mesh, &subject, &partner).await?;
    for ((column, want), got) in COLUMNS.iter().zip(expected).zip(&got) {
        assert_eq!(got, want, "{:?} × {column}", choice.label());
    }

    let rows = readme_rows();
    assert_eq!(
        rows.first().map(|h| h[1..].to_vec()),
        Some(COLUMNS.map(String::from).to_vec()),
        "the README table's columns"
    );
    let documented = rows
        .iter()
        .find(|r| r.first().map(String::as_str) == Some(choice.label()))
        .unwrap_or_else(|| panic!("the README table has no row {:?}", choice.label()));
    assert_eq!(
        documented[1..],
        expected.map(String::from),
        "the README says what the test proves for {:?}",
        choice.label()
    );
    Ok(())
}

#[tokio::test]
async fn nothing_recorded_denies_every_consent_based_use() -> anyhow::Result<()> {
    row(
        Choice::Nothing,
        [
            "denied: NO_CONSENT",
            "denied: NO_CONSENT",
            "denied: NO_CONSENT",
            "denied: NO_CONSENT",
            "denied: NO_CONSENT",
            "denied: NO_CONSENT",
        ],
    )
    .await
}

#[tokio::test]
async fn with_your_consent_every_api_allows() -> anyhow::Result<()> {
    row(
        Choice::Consented,
        [
            "allowed", "allowed", "allowed", "allowed", "allowed", "allowed",
        ],
    )
    .await
}

#[tokio::test]
async fn a_withdrawal_is_one_answer_everywhere() -> anyhow::Result<()> {
    row(
        Choice::Withdrawn,
        [
            "denied: WITHDRAWN",
            "denied: WITHDRAWN",
            "denied: WITHDRAWN",
            "denied: WITHDRAWN",
            "denied: WITHDRAWN",
            "denied: WITHDRAWN",
        ],
    )
    .await
}

#[tokio::test]
async fn the_right_to_object_is_one_answer_everywhere() -> anyhow::Result<()> {
    row(
        Choice::Objected,
        [
            "denied: OBJECTED",
            "denied: OBJECTED",
            "denied: OBJECTED",
            "denied: OBJECTED",
            "allowed",
            "denied: OBJECTED",
        ],
    )
    .await
}

#[tokio::test]
async fn do_not_sell_my_personal_information_stops_the_ad_partners_too() -> anyhow::Result<()> {
    row(
        Choice::DoNotSell,
        [
            "allowed",
            "allowed",
            "allowed",
            "denied: DO_NOT_SELL",
            "allowed",
            "denied: DO_NOT_SELL",
        ],
    )
    .await
}

#[tokio::test]
async fn you_can_opt_out_of_receiving_marketing_communications_one_answer() -> anyhow::Result<()> {
    row(
        Choice::EmailOptOut,
        [
            "denied: OPTED_OUT",
            "denied: OPTED_OUT",
            "denied: OPTED_OUT",
            "allowed",
            "allowed",
            "allowed",
        ],
    )
    .await
}

#[tokio::test]
async fn a_restriction_is_one_answer_everywhere() -> anyhow::Result<()> {
    row(
        Choice::Restricted,
        [
            "denied: RESTRICTED",
            "denied: RESTRICTED",
            "denied: RESTRICTED",
            "denied: RESTRICTED",
            "denied: RESTRICTED",
            "denied: RESTRICTED",
        ],
    )
    .await
}
