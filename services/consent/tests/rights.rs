//! The subject's rights over processing: restriction and objection ("GDPR Data Protection
//! Rights"), "do not sell or share" and the Global Privacy Control signal ("CCPA Privacy
//! Rights (Do Not Sell My Personal Information)"), and the legal basis each decision names
//! ("Legal Basis for Processing (For UK/EEA/Swiss Users)").

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{
        self as pb, Channel, LedgerEntryKind, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
    identity::v1::UpdateProfileRequest,
};
use pdm_runtime::ManualClock;
use pdm_testkit::{TestMesh, fake::Person};
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel as GrpcChannel};

type Client = ConsentServiceClient<GrpcChannel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

fn person_in(region: Region) -> Person {
    Person {
        region,
        ..Person::new()
    }
}

async fn grant(consent: &mut Client, subject: &str, purpose: &str) -> anyhow::Result<()> {
    consent
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".to_owned(),
            text_hash: TEXT_HASH.to_owned(),
            actor: "web-signup".to_owned(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

async fn decide(
    consent: &mut Client,
    subject: &str,
    purpose: &str,
) -> anyhow::Result<pb::Decision> {
    Ok(consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

async fn restrict(consent: &mut Client, subject: &str, restricted: bool) -> anyhow::Result<()> {
    consent
        .set_restriction(pb::SetRestrictionRequest {
            subject_id: subject.to_owned(),
            restricted,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".to_owned(),
        })
        .await?;
    Ok(())
}

fn objection(subject: &str, purpose: &str, withdraw: bool) -> pb::RecordObjectionRequest {
    pb::RecordObjectionRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        withdraw,
        source: Source::PrivacyRequest as i32,
        actor: "privacy-team".to_owned(),
    }
}

async fn promotional_email(consent: &mut Client, subject: &str) -> anyhow::Result<pb::Decision> {
    Ok(consent
        .can_contact(pb::CanContactRequest {
            subject_id: subject.to_owned(),
            channel: Channel::Email as i32,
            kind: MessageKind::Promotional as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

async fn purposes(consent: &mut Client) -> anyhow::Result<Vec<pb::Purpose>> {
    Ok(consent
        .list_purposes(pb::ListPurposesRequest {})
        .await?
        .into_inner()
        .purposes)
}

async fn history(consent: &mut Client, subject: &str) -> anyhow::Result<Vec<pb::LedgerEntry>> {
    Ok(consent
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries)
}

fn with_gpc<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("sec-gpc", MetadataValue::from_static("1"));
    request
}

#[tokio::test]
async fn restriction_denies_everything_but_legal_compliance_until_it_is_lifted()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::Eea);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    grant(&mut consent, &subject, "product_analytics").await?;
    grant(&mut consent, &subject, "marketing_email").await?;
    let catalogue = purposes(&mut consent).await?;
    let mut before = Vec::new();
    for p in &catalogue {
        before.push(decide(&mut consent, &subject, &p.key).await?);
    }
    assert!(before.iter().any(|d| d.allowed), "{before:?}");

    // "GDPR Data Protection Rights": the right to restrict processing. Only what the law
    // itself requires (legal claims, official inquiries) goes on.
    restrict(&mut consent, &subject, true).await?;
    for p in &catalogue {
        let d = decide(&mut consent, &subject, &p.key).await?;
        if p.key == "legal_compliance" {
            assert!(d.allowed, "legal compliance survives a restriction");
            assert_eq!(d.legal_basis, LegalBasis::LegalObligation as i32);
        } else {
            assert!(!d.allowed, "{} allowed while restricted", p.key);
            assert_eq!(d.reason, Reason::Restricted as i32, "{}", p.key);
        }
    }
    assert_eq!(
        promotional_email(&mut consent, &subject).await?.reason,
        Reason::Restricted as i32
    );
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(state.restricted);

    restrict(&mut consent, &subject, false).await?;
    for (p, was) in catalogue.iter().zip(&before) {
        let d = decide(&mut consent, &subject, &p.key).await?;
        assert_eq!(&d, was, "{} after the restriction was lifted", p.key);
    }
    let kinds: Vec<i32> = history(&mut consent, &subject)
        .await?
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            LedgerEntryKind::Grant as i32,
            LedgerEntryKind::Grant as i32,
            LedgerEntryKind::Restrict as i32,
            LedgerEntryKind::Unrestrict as i32,
        ]
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_objection_to_legitimate_interests_processing_denies_it_until_withdrawn()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::Eea);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    let d = decide(&mut consent, &subject, "product_research").await?;
    assert!(d.allowed);
    assert_eq!(d.legal_basis, LegalBasis::LegitimateInterests as i32);

    // "Legal Basis for Processing": "If we are using your information due to our legitimate
    // business interests ... you have the right to object to this use."
    let entry = consent
        .record_objection(objection(&subject, "product_research", false))
        .await?
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.kind, LedgerEntryKind::Object as i32);
    let d = decide(&mut consent, &subject, "product_research").await?;
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::Objected as i32);
    assert_eq!(d.legal_basis, LegalBasis::LegitimateInterests as i32);
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    let research = state
        .purposes
        .iter()
        .find(|p| p.purpose == "product_research")
        .expect("product_research state");
    assert!(research.objected);
    // Other purposes are untouched.
    assert!(
        decide(&mut consent, &subject, "account_security")
            .await?
            .allowed
    );

    let entry = consent
        .record_objection(objection(&subject, "product_research", true))
        .await?
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.kind, LedgerEntryKind::WithdrawObjection as i32);
    let d = decide(&mut consent, &subject, "product_research").await?;
    assert!(d.allowed, "withdrawing the objection lifts it");
    assert_eq!(d.reason, Reason::OtherLegalBasis as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_objection_to_direct_marketing_is_absolute_even_with_consent() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::Eea);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    grant(&mut consent, &subject, "marketing_email").await?;
    assert!(promotional_email(&mut consent, &subject).await?.allowed);

    // Art. 21(2)-(3) GDPR: an objection to direct marketing always wins, consent or not.
    consent
        .record_objection(objection(&subject, "marketing_email", false))
        .await?;
    let d = decide(&mut consent, &subject, "marketing_email").await?;
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::Objected as i32);
    let d = promotional_email(&mut consent, &subject).await?;
    assert!(!d.allowed, "no promotional email after an objection");
    assert_eq!(d.reason, Reason::Objected as i32);

    // Granting consent again does not override the objection.
    grant(&mut consent, &subject, "marketing_email").await?;
    assert_eq!(
        decide(&mut consent, &subject, "marketing_email")
            .await?
            .reason,
        Reason::Objected as i32
    );

    consent
        .record_objection(objection(&subject, "marketing_email", true))
        .await?;
    let d = decide(&mut consent, &subject, "marketing_email").await?;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reason, Reason::ConsentGiven as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_objection_to_processing_that_rests_on_a_contract_is_refused() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::Eea);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let before = history(&mut consent, &subject).await?.len();

    // The right to object covers legitimate interests and direct marketing, not the
    // processing needed to provide the service the subject signed up for.
    let err = consent
        .record_objection(objection(&subject, "service_provision", false))
        .await
        .expect_err("service_provision rests on a contract");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("LEGAL_BASIS_CONTRACT"),
        "{}",
        err.message()
    );
    // Consent-based in the EEA: refusing consent is the remedy, not an objection.
    let err = consent
        .record_objection(objection(&subject, "product_analytics", false))
        .await
        .expect_err("product_analytics rests on consent in the EEA");
    assert_eq!(err.code(), Code::FailedPrecondition);

    assert_eq!(history(&mut consent, &subject).await?.len(), before);
    assert!(
        decide(&mut consent, &subject, "service_provision")
            .await?
            .allowed
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn do_not_sell_denies_sale_and_ad_partners_even_with_consent() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::UsCa);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    // In California sale_or_share rests on legitimate interests: allowed until the
    // consumer says otherwise; ads on other platforms need consent everywhere.
    let d = decide(&mut consent, &subject, "sale_or_share").await?;
    assert!(d.allowed);
    assert_eq!(d.legal_basis, LegalBasis::LegitimateInterests as i32);
    grant(&mut consent, &subject, "marketing_ads").await?;
    assert!(
        decide(&mut consent, &subject, "marketing_ads")
            .await?
            .allowed
    );

    // "CCPA Privacy Rights": "Request that a business that sells a consumer's personal
    // data, not sell the consumer's personal data."
    let entry = consent
        .set_do_not_sell(pb::SetDoNotSellRequest {
            subject_id: subject.clone(),
            do_not_sell: true,
            source: Source::WebForm as i32,
            actor: "do-not-sell-link".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.kind, LedgerEntryKind::DoNotSell as i32);
    for purpose in ["sale_or_share", "marketing_ads"] {
        let d = decide(&mut consent, &subject, purpose).await?;
        assert!(!d.allowed, "{purpose} allowed after do-not-sell");
        assert_eq!(d.reason, Reason::DoNotSell as i32, "{purpose}");
    }
    let ads = consent
        .can_contact(pb::CanContactRequest {
            subject_id: subject.clone(),
            channel: Channel::Ads as i32,
            kind: MessageKind::Promotional as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(ads.reason, Reason::DoNotSell as i32);
    // Nothing else changes.
    assert!(
        decide(&mut consent, &subject, "service_provision")
            .await?
            .allowed
    );
    assert!(
        decide(&mut consent, &subject, "product_analytics")
            .await?
            .allowed
    );
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(state.do_not_sell);

    consent
        .set_do_not_sell(pb::SetDoNotSellRequest {
            subject_id: subject.clone(),
            do_not_sell: false,
            source: Source::WebForm as i32,
            actor: "settings-page".to_owned(),
        })
        .await?;
    assert!(
        decide(&mut consent, &subject, "sale_or_share")
            .await?
            .allowed
    );
    assert_eq!(
        decide(&mut consent, &subject, "marketing_ads")
            .await?
            .reason,
        Reason::ConsentGiven as i32
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_global_privacy_control_signal_is_recorded_and_honoured_in_the_same_call()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = person_in(Region::UsCa);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    assert!(
        decide(&mut consent, &subject, "sale_or_share")
            .await?
            .allowed
    );

    // A request that does not signal GPC changes nothing; `sec-gpc: 0` is no signal.
    let mut no_signal = Request::new(pb::CheckProcessingRequest {
        subject_id: subject.clone(),
        purpose: "sale_or_share".to_owned(),
        ..Default::default()
    });
    no_signal
        .metadata_mut()
        .insert("sec-gpc", MetadataValue::from_static("0"));
    assert!(
        consent
            .check_processing(no_signal)
            .await?
            .into_inner()
            .decision
            .expect("decision")
            .allowed
    );
    assert!(history(&mut consent, &subject).await?.is_empty());

    // "CCPA Privacy Rights (Do Not Sell My Personal Information)": the browser's Global
    // Privacy Control is an opt-out of sale and sharing, honoured by the very request
    // that carries it.
    let d = consent
        .check_processing(with_gpc(pb::CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "sale_or_share".to_owned(),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(
        !d.allowed,
        "the signal is honoured in the call that carries it"
    );
    assert_eq!(d.reason, Reason::DoNotSell as i32);
    let entries = history(&mut consent, &subject).await?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].kind, LedgerEntryKind::DoNotSell as i32);
    assert_eq!(entries[0].source, Source::Gpc as i32);
    // Seen by every later check, with or without the signal.
    assert_eq!(
        decide(&mut consent, &subject, "sale_or_share")
            .await?
            .reason,
        Reason::DoNotSell as i32
    );
    // A repeated signal is not a new choice: it is recorded once.
    consent
        .check_processing(with_gpc(pb::CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "sale_or_share".to_owned(),
            ..Default::default()
        }))
        .await?;
    assert_eq!(history(&mut consent, &subject).await?.len(), 1);

    // The same on GetConsents, for another consumer.
    let other = person_in(Region::UsCa);
    let other_subject = mesh.sign_up(&other).await?;
    let state = consent
        .get_consents(with_gpc(pb::GetConsentsRequest {
            subject_id: other_subject.clone(),
        }))
        .await?
        .into_inner();
    assert!(state.do_not_sell);
    let sale = state
        .purposes
        .iter()
        .find(|p| p.purpose == "sale_or_share")
        .and_then(|p| p.decision)
        .expect("sale_or_share decision");
    assert_eq!(sale.reason, Reason::DoNotSell as i32);
    let entries = history(&mut consent, &other_subject).await?;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].kind, entries[0].source),
        (LedgerEntryKind::DoNotSell as i32, Source::Gpc as i32)
    );
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&other.secrets());
    Ok(())
}

#[tokio::test]
async fn the_legal_basis_is_named_for_the_subjects_region() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let european = person_in(Region::Eea);
    let eea = mesh.sign_up(&european).await?;
    let american = person_in(Region::Us);
    let us = mesh.sign_up(&american).await?;

    // Usage telemetry needs consent in the EEA; in the US it rests on legitimate interests.
    let d = decide(&mut consent, &eea, "product_analytics").await?;
    assert!(!d.allowed);
    assert_eq!(
        (d.legal_basis, d.reason),
        (LegalBasis::Consent as i32, Reason::NoConsent as i32)
    );
    let d = decide(&mut consent, &us, "product_analytics").await?;
    assert!(d.allowed);
    assert_eq!(
        (d.legal_basis, d.reason),
        (
            LegalBasis::LegitimateInterests as i32,
            Reason::OtherLegalBasis as i32
        )
    );
    let err = consent
        .grant_consent(pb::GrantConsentRequest {
            subject_id: us.clone(),
            purpose: "product_analytics".to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".to_owned(),
            text_hash: TEXT_HASH.to_owned(),
            actor: "web-signup".to_owned(),
            occurred_at: None,
        })
        .await
        .expect_err("not consent-based in the US");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("LEGAL_BASIS_LEGITIMATE_INTERESTS"),
        "{}",
        err.message()
    );

    // The catalogue says the same, region by region.
    let catalogue = purposes(&mut consent).await?;
    let analytics = catalogue
        .iter()
        .find(|p| p.key == "product_analytics")
        .expect("product_analytics");
    let basis_in = |region: Region| {
        analytics
            .legal_bases
            .iter()
            .find(|b| b.region == region as i32)
            .map(|b| b.legal_basis)
    };
    assert_eq!(basis_in(Region::Eea), Some(LegalBasis::Consent as i32));
    assert_eq!(
        basis_in(Region::Us),
        Some(LegalBasis::LegitimateInterests as i32)
    );

    // "Legal Basis for Processing (For UK/EEA/Swiss Users)": every decision names one.
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: eea.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(state.region, Region::Eea as i32);
    assert_eq!(state.purposes.len(), catalogue.len());
    for p in &catalogue {
        let d = decide(&mut consent, &eea, &p.key).await?;
        assert_ne!(
            d.legal_basis,
            LegalBasis::Unspecified as i32,
            "{} names no legal basis",
            p.key
        );
    }
    mesh.logs().assert_clean(&european.secrets());
    mesh.logs().assert_clean(&american.secrets());
    Ok(())
}

#[tokio::test]
async fn a_move_to_another_region_changes_the_basis_once_the_remembered_region_expires()
-> anyhow::Result<()> {
    let clock = ManualClock::new(chrono::Utc::now());
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .clock(clock.clone())
        .start()
        .await?;
    let person = person_in(Region::Us);
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let d = decide(&mut consent, &subject, "product_analytics").await?;
    assert_eq!(d.legal_basis, LegalBasis::LegitimateInterests as i32);

    mesh.identity()
        .update_profile(UpdateProfileRequest {
            subject_id: subject.clone(),
            region: Some(Region::Eea as i32),
            ..Default::default()
        })
        .await?;
    // The region is cached for an hour (`consent.region_ttl_secs`); after that, the
    // subject's new regime applies: usage telemetry now needs consent.
    clock.advance(chrono::Duration::hours(2));
    let d = decide(&mut consent, &subject, "product_analytics").await?;
    assert!(!d.allowed, "{d:?}");
    assert_eq!(
        (d.legal_basis, d.reason),
        (LegalBasis::Consent as i32, Reason::NoConsent as i32)
    );
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(state.region, Region::Eea as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
