//! Authorising transfers ("How we transfer information we collect internationally":
//! transfers out of the EEA, the UK and Switzerland rest on an adequacy decision or on
//! standard contractual clauses or another approved mechanism; "Sharing Data with
//! International Third Parties"; GDPR chapter V). Every path of the decision, and the log
//! that records each decision, allowed or denied (Art. 5(2) GDPR, accountability).

mod support;

use chrono::Duration;
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{self as consent_pb, Source},
    transfers::v1::{
        self as pb, MechanismKind, MechanismStatus, Outcome, PartyRole, RecipientRole, Regime,
        TiaOutcome,
    },
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::Person,
    start_time,
};
use pdm_transfers::Transfers;
use support::{
    assert_logged, authorize, mesh, outcome, person, recipient, record, register, scc, strings,
    subject, transfer,
};
use tonic::Code;

#[tokio::test]
async fn transfers_within_the_regime_or_to_an_adequate_country_need_no_mechanism()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let japan = register(&mut client, recipient("support-jp", "JP")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    let us_plain = register(&mut client, recipient("crm-us", "US")).await?;
    let us_certified = register(
        &mut client,
        pb::Recipient {
            certifications: strings(&["EU-US DPF"]),
            ..recipient("support-desk", "US")
        },
    )
    .await?;
    let mut decisions = Vec::new();

    let d = authorize(&mut client, transfer(Regime::Eu, &germany.recipient_id)).await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedWithinRegime);
    assert!(d.mechanism_id.is_empty());
    decisions.push(d);

    let d = authorize(&mut client, transfer(Regime::Eu, &japan.recipient_id)).await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedAdequacy);
    assert!(d.detail.contains("Art. 45"), "{}", d.detail);
    decisions.push(d);

    // The EU-US Data Privacy Framework covers certified organisations only.
    let d = authorize(&mut client, transfer(Regime::Eu, &us_plain.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedNoMechanism);
    decisions.push(d);
    let d = authorize(
        &mut client,
        transfer(Regime::Eu, &us_certified.recipient_id),
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedAdequacy);
    assert!(d.detail.contains("EU-US DPF"), "{}", d.detail);
    decisions.push(d);
    // The UK list asks for the UK Extension, which this recipient does not hold.
    let d = authorize(
        &mut client,
        transfer(Regime::Uk, &us_certified.recipient_id),
    )
    .await?;
    assert_eq!(outcome(&d), Outcome::DeniedNoMechanism);
    decisions.push(d);

    let d = authorize(&mut client, transfer(Regime::Other, &india.recipient_id)).await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedNotRestricted);
    decisions.push(d);
    let d = authorize(&mut client, transfer(Regime::Eu, &india.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedNoMechanism);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn sccs_allow_hosting_in_india_for_a_processor_with_a_positive_tia() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    let mechanism = record(&mut client, scc(&hosting.recipient_id, clock.now())).await?;
    let mut decisions = Vec::new();

    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            data_categories: strings(&["account.profile", "support.ticket"]),
            subject_id: person(&mesh).await?,
            reference: "nightly-replication".into(),
            ..transfer(Regime::Eu, &hosting.recipient_id)
        },
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedMechanism);
    assert_eq!(d.mechanism_id, mechanism.mechanism_id);
    assert_eq!(d.mechanism_kind, MechanismKind::EuScc as i32);
    assert_eq!(d.decided_at, Some(timestamp(clock.now())));
    decisions.push(d);

    // EU SCCs serve EU exports only: a UK export needs the IDTA or the UK Addendum.
    let d = authorize(&mut client, transfer(Regime::Uk, &hosting.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedNoMechanism);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn purposes_and_categories_are_bounded_by_the_register_and_the_mechanism()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    record(&mut client, scc(&hosting.recipient_id, clock.now())).await?;
    let support_only = register(&mut client, recipient("support-in", "IN")).await?;
    let support_scc = record(
        &mut client,
        pb::Mechanism {
            purposes: strings(&["support"]),
            data_categories: strings(&["support.ticket"]),
            ..scc(&support_only.recipient_id, clock.now())
        },
    )
    .await?;
    let mut decisions = Vec::new();

    // The register entry comes first, even inside the regime: a recipient gets data only
    // for the purposes and categories it is registered for.
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            purpose: "marketing_ads".into(),
            ..transfer(Regime::Eu, &hosting.recipient_id)
        },
    )
    .await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedPurposeNotCovered);
    assert!(d.mechanism_id.is_empty(), "no mechanism was looked at");
    decisions.push(d);
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            data_categories: strings(&["account.profile", "billing.record"]),
            ..transfer(Regime::Other, &hosting.recipient_id)
        },
    )
    .await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedCategoryNotCovered);
    assert!(d.detail.contains("billing.record"), "{}", d.detail);
    decisions.push(d);

    // Then the mechanism: this one covers support tickets for support only.
    let d = authorize(
        &mut client,
        transfer(Regime::Eu, &support_only.recipient_id),
    )
    .await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedPurposeNotCovered);
    assert_eq!(d.mechanism_id, support_scc.mechanism_id);
    decisions.push(d);
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            purpose: "support".into(),
            ..transfer(Regime::Eu, &support_only.recipient_id)
        },
    )
    .await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedCategoryNotCovered);
    assert_eq!(d.mechanism_id, support_scc.mechanism_id);
    decisions.push(d);
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            purpose: "support".into(),
            data_categories: strings(&["support.ticket"]),
            ..transfer(Regime::Eu, &support_only.recipient_id)
        },
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedMechanism);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn an_scc_module_that_does_not_match_the_parties_roles_is_refused() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    // Module 1 is controller to controller; the hosting provider is a processor.
    let module_1 = record(
        &mut client,
        pb::Mechanism {
            scc_module: 1,
            ..scc(&hosting.recipient_id, clock.now())
        },
    )
    .await?;
    let office = register(
        &mut client,
        pb::Recipient {
            role: RecipientRole::JointController as i32,
            ..recipient("office-in", "IN")
        },
    )
    .await?;
    record(
        &mut client,
        pb::Mechanism {
            scc_module: 1,
            ..scc(&office.recipient_id, clock.now())
        },
    )
    .await?;
    let sub_processor = register(
        &mut client,
        pb::Recipient {
            role: RecipientRole::SubProcessor as i32,
            ..recipient("cdn-in", "IN")
        },
    )
    .await?;
    record(
        &mut client,
        pb::Mechanism {
            scc_module: 3,
            ..scc(&sub_processor.recipient_id, clock.now())
        },
    )
    .await?;
    let mut decisions = Vec::new();

    let d = authorize(&mut client, transfer(Regime::Eu, &hosting.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedModuleMismatch);
    assert_eq!(d.mechanism_id, module_1.mechanism_id);
    decisions.push(d);

    let d = authorize(&mut client, transfer(Regime::Eu, &office.recipient_id)).await?;
    assert!(d.allowed, "module 1 fits controller to controller");
    decisions.push(d);

    // Module 3 is processor to processor: right when we export as a processor, wrong
    // when we export as controller (an unspecified role means controller).
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            exporter_role: PartyRole::Processor as i32,
            ..transfer(Regime::Eu, &sub_processor.recipient_id)
        },
    )
    .await?;
    assert!(d.allowed);
    decisions.push(d);
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            exporter_role: PartyRole::Unspecified as i32,
            ..transfer(Regime::Eu, &sub_processor.recipient_id)
        },
    )
    .await?;
    assert_eq!(outcome(&d), Outcome::DeniedModuleMismatch);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn a_missing_or_negative_impact_assessment_stops_the_transfer() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let unassessed = register(&mut client, recipient("hosting-in", "IN")).await?;
    let without_tia = record(
        &mut client,
        pb::Mechanism {
            tia: None,
            ..scc(&unassessed.recipient_id, clock.now())
        },
    )
    .await?;
    let negative = register(&mut client, recipient("analytics-in", "IN")).await?;
    let inadequate = record(
        &mut client,
        pb::Mechanism {
            tia: Some(pb::TransferImpactAssessment {
                reference: "TIA-2026-02".into(),
                assessed_on: "2026-10-20".into(),
                outcome: TiaOutcome::Inadequate as i32,
                supplementary_measures: Vec::new(),
            }),
            ..scc(&negative.recipient_id, clock.now())
        },
    )
    .await?;
    let mut decisions = Vec::new();

    let d = authorize(&mut client, transfer(Regime::Eu, &unassessed.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedTiaMissing);
    assert_eq!(d.mechanism_id, without_tia.mechanism_id);
    decisions.push(d);
    let d = authorize(&mut client, transfer(Regime::Eu, &negative.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedTiaNegative);
    assert_eq!(d.mechanism_id, inadequate.mechanism_id);
    decisions.push(d);

    // A new, positive assessment under fresh clauses makes the transfer possible.
    record(&mut client, scc(&negative.recipient_id, clock.now())).await?;
    let d = authorize(&mut client, transfer(Regime::Eu, &negative.recipient_id)).await?;
    assert!(d.allowed);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn a_suspended_mechanism_covers_nothing() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    for status in [MechanismStatus::Suspended, MechanismStatus::Terminated] {
        record(
            &mut client,
            pb::Mechanism {
                status: status as i32,
                ..scc(&hosting.recipient_id, clock.now())
            },
        )
        .await?;
    }
    let d = authorize(&mut client, transfer(Regime::Eu, &hosting.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedMechanismInactive);
    assert_logged(&mut client, &[d]).await
}

#[tokio::test]
async fn expiry_and_an_overdue_review_end_a_mechanism_as_the_clock_moves() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let now = clock.now();
    let expiring = register(&mut client, recipient("hosting-in", "IN")).await?;
    record(
        &mut client,
        pb::Mechanism {
            expires_at: Some(timestamp(now + Duration::days(10))),
            ..scc(&expiring.recipient_id, now)
        },
    )
    .await?;
    let reviewed = register(&mut client, recipient("support-in", "IN")).await?;
    record(
        &mut client,
        pb::Mechanism {
            review_due: Some(timestamp(now + Duration::days(20))),
            ..scc(&reviewed.recipient_id, now)
        },
    )
    .await?;
    let future = register(&mut client, recipient("office-in", "IN")).await?;
    record(
        &mut client,
        pb::Mechanism {
            valid_from: Some(timestamp(now + Duration::days(5))),
            ..scc(&future.recipient_id, now)
        },
    )
    .await?;
    let mut decisions = Vec::new();
    let mut decide = async |recipient_id: &str| {
        let d = authorize(&mut client, transfer(Regime::Eu, recipient_id)).await?;
        decisions.push(d.clone());
        anyhow::Ok(outcome(&d))
    };

    assert_eq!(
        decide(&expiring.recipient_id).await?,
        Outcome::AllowedMechanism
    );
    assert_eq!(
        decide(&reviewed.recipient_id).await?,
        Outcome::AllowedMechanism
    );
    assert_eq!(
        decide(&future.recipient_id).await?,
        Outcome::DeniedExpired,
        "not yet valid"
    );

    clock.advance(Duration::days(10));
    assert_eq!(
        decide(&expiring.recipient_id).await?,
        Outcome::DeniedExpired,
        "expired at the very moment of expiry"
    );
    assert_eq!(
        decide(&reviewed.recipient_id).await?,
        Outcome::AllowedMechanism
    );
    assert_eq!(
        decide(&future.recipient_id).await?,
        Outcome::AllowedMechanism
    );

    clock.advance(Duration::days(10) + Duration::seconds(1));
    assert_eq!(
        decide(&reviewed.recipient_id).await?,
        Outcome::DeniedReviewOverdue
    );

    assert_logged(&mut client, &decisions).await
}

#[tokio::test]
async fn an_explicit_consent_derogation_asks_the_consent_service() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Transfers)
        .clock(clock.clone())
        .start()
        .await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let ada = mesh.sign_up(&person).await?;
    let mut client = mesh.transfers();
    let partner = register(
        &mut client,
        pb::Recipient {
            role: RecipientRole::IndependentController as i32,
            ..recipient("partner-in", "IN")
        },
    )
    .await?;
    // Art. 49(1)(a) GDPR: without adequacy or safeguards, an occasional transfer may rest
    // on the subject's explicit consent.
    let derogation = record(
        &mut client,
        pb::Mechanism {
            recipient_id: partner.recipient_id.clone(),
            kind: MechanismKind::DerogationExplicitConsent as i32,
            regimes: vec![Regime::Eu as i32],
            occasional: true,
            valid_from: Some(timestamp(clock.now())),
            ..Default::default()
        },
    )
    .await?;
    let mut decisions = Vec::new();

    let d = authorize(&mut client, transfer(Regime::Eu, &partner.recipient_id)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedNoExplicitConsent, "no subject");
    assert_eq!(d.mechanism_id, derogation.mechanism_id);
    decisions.push(d);

    let for_subject = pb::AuthorizeTransferRequest {
        subject_id: ada.clone(),
        ..transfer(Regime::Eu, &partner.recipient_id)
    };
    let d = authorize(&mut client, for_subject.clone()).await?;
    assert!(!d.allowed);
    assert_eq!(
        outcome(&d),
        Outcome::DeniedNoExplicitConsent,
        "no consent yet"
    );
    decisions.push(d);

    let mut consent = mesh.consent();
    consent
        .grant_consent(consent_pb::GrantConsentRequest {
            subject_id: ada.clone(),
            purpose: "international_transfer".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".into(),
            actor: "transfer-consent-dialog".into(),
            occurred_at: None,
        })
        .await?;
    let d = authorize(&mut client, for_subject.clone()).await?;
    assert!(d.allowed);
    assert_eq!(outcome(&d), Outcome::AllowedMechanism);
    assert_eq!(d.mechanism_id, derogation.mechanism_id);
    assert_eq!(
        d.mechanism_kind,
        MechanismKind::DerogationExplicitConsent as i32
    );
    decisions.push(d);

    // Consent given to one subject's transfer is not anyone else's.
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            subject_id: mesh.sign_up(&Person::new()).await?,
            ..for_subject.clone()
        },
    )
    .await?;
    assert_eq!(outcome(&d), Outcome::DeniedNoExplicitConsent);
    decisions.push(d);

    // A withdrawal is seen by the very next transfer.
    consent
        .withdraw_consent(consent_pb::WithdrawConsentRequest {
            subject_id: ada.clone(),
            purpose: "international_transfer".into(),
            source: Source::WebForm as i32,
            actor: "settings-page".into(),
        })
        .await?;
    let d = authorize(&mut client, for_subject).await?;
    assert_eq!(outcome(&d), Outcome::DeniedNoExplicitConsent);
    decisions.push(d);

    assert_logged(&mut client, &decisions).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_unknown_recipient_is_not_found_and_nothing_is_logged() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let err = client
        .authorize_transfer(transfer(Regime::Eu, &uuid::Uuid::now_v7().to_string()))
        .await
        .expect_err("unknown recipient");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "transfer_log").await,
        0
    );
    Ok(())
}

#[tokio::test]
async fn bad_transfer_requests_are_refused_field_by_field_and_nothing_is_logged()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    let good = transfer(Regime::Eu, &hosting.recipient_id);
    let mut refused = async |request: pb::AuthorizeTransferRequest| {
        let err = client
            .authorize_transfer(request)
            .await
            .expect_err("invalid transfer");
        field_violations(&err)
    };

    assert_eq!(
        refused(pb::AuthorizeTransferRequest {
            regime: Regime::Unspecified as i32,
            data_categories: Vec::new(),
            subject_id: "not-a-subject".into(),
            exporter_role: 7,
            ..good.clone()
        })
        .await,
        ["regime", "data_categories", "subject_id", "exporter_role"]
    );
    assert_eq!(
        refused(pb::AuthorizeTransferRequest {
            regime: 42,
            recipient_id: String::new(),
            data_categories: strings(&["Account Profile"]),
            reference: "x".repeat(201),
            ..good.clone()
        })
        .await,
        ["regime", "recipient_id", "data_categories[0]", "reference"]
    );
    assert_eq!(
        refused(pb::AuthorizeTransferRequest {
            purpose: String::new(),
            ..good.clone()
        })
        .await,
        ["purpose"]
    );
    assert_eq!(
        refused(pb::AuthorizeTransferRequest {
            subject_id: subject().to_uppercase().replace('-', ""),
            ..good.clone()
        })
        .await,
        ["subject_id"],
        "one spelling per subject: hyphenated"
    );
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "transfer_log").await,
        0
    );

    // The same request, well formed, is decided and logged.
    let d = authorize(&mut client, good).await?;
    assert_eq!(outcome(&d), Outcome::DeniedNoMechanism);
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "transfer_log").await,
        1
    );
    Ok(())
}

#[tokio::test]
async fn do_not_sell_my_personal_information_reaches_the_advertising_partners() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Transfers)
        .clock(clock.clone())
        .start()
        .await?;
    let californian = mesh
        .sign_up(&Person {
            region: Region::Us,
            ..Person::new()
        })
        .await?;
    let mut client = mesh.transfers();
    // As seeded: an advertising partner decides its own purposes.
    let partner = register(
        &mut client,
        pb::Recipient {
            role: RecipientRole::IndependentController as i32,
            purposes: strings(&["marketing_ads", "sale_or_share"]),
            ..recipient("ads-ie", "IE")
        },
    )
    .await?;
    let hosting = register(&mut client, recipient("hosting-ie", "IE")).await?;
    let to_partner = |subject: &str| pb::AuthorizeTransferRequest {
        subject_id: subject.to_owned(),
        purpose: "marketing_ads".into(),
        ..transfer(Regime::Eu, &partner.recipient_id)
    };
    let mut decisions = Vec::new();

    // Advertising rests on consent: nothing goes to the partner before it is given.
    let d = authorize(&mut client, to_partner(&californian)).await?;
    assert_eq!(outcome(&d), Outcome::DeniedSubjectChoice);
    assert!(d.detail.contains("REASON_NO_CONSENT"), "{}", d.detail);
    decisions.push(d);
    mesh.consent()
        .grant_consent(consent_pb::GrantConsentRequest {
            subject_id: californian.clone(),
            purpose: "marketing_ads".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".into(),
            actor: "ads-consent-dialog".into(),
            occurred_at: None,
        })
        .await?;
    let d = authorize(&mut client, to_partner(&californian)).await?;
    assert!(d.allowed, "{d:?}");
    decisions.push(d);

    // Not in bulk: the person's choices are asked person by person.
    let d = authorize(&mut client, to_partner("")).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedSubjectRequired);
    decisions.push(d);

    mesh.consent()
        .set_do_not_sell(consent_pb::SetDoNotSellRequest {
            subject_id: californian.clone(),
            do_not_sell: true,
            source: Source::WebForm as i32,
            actor: "do-not-sell-link".into(),
        })
        .await?;
    let d = authorize(&mut client, to_partner(&californian)).await?;
    assert!(!d.allowed);
    assert_eq!(outcome(&d), Outcome::DeniedSubjectChoice);
    assert!(d.detail.contains("REASON_DO_NOT_SELL"), "{}", d.detail);
    decisions.push(d);

    // A processor acting on our instructions is not a sale: hosting goes on.
    let d = authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            subject_id: californian.clone(),
            ..transfer(Regime::Eu, &hosting.recipient_id)
        },
    )
    .await?;
    assert!(d.allowed, "{d:?}");
    decisions.push(d);

    // Lifting the choice is seen by the very next disclosure.
    mesh.consent()
        .set_do_not_sell(consent_pb::SetDoNotSellRequest {
            subject_id: californian.clone(),
            do_not_sell: false,
            source: Source::WebForm as i32,
            actor: "do-not-sell-link".into(),
        })
        .await?;
    let d = authorize(&mut client, to_partner(&californian)).await?;
    assert!(d.allowed, "{d:?}");
    decisions.push(d);

    // Every decision, the refusals for a person's choice included, is in the log.
    assert_logged(&mut client, &decisions).await
}
