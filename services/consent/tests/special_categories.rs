//! Special categories of personal data (issue 15; policy, "Consent to be obtained": "We
//! always ask for your permission before collecting or using any sensitive personal
//! details"; Art. 9 GDPR): each category is a purpose of its own that only explicit consent
//! opens, recorded apart from ordinary grants.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{self as pb, LedgerEntryKind, Reason, Source},
};
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::Person,
};
use tonic::Code;

const TEXT_HASH: &str = "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab";

const CATEGORIES: [&str; 8] = [
    "special_category_health",
    "special_category_biometric",
    "special_category_genetic",
    "special_category_ethnicity",
    "special_category_politics",
    "special_category_religion",
    "special_category_trade_union",
    "special_category_sex_life",
];

fn grant(subject: &str, purpose: &str, source: Source) -> pb::GrantConsentRequest {
    pb::GrantConsentRequest {
        subject_id: subject.to_owned(),
        purpose: purpose.to_owned(),
        source: source as i32,
        policy_version: "2024-06-28".to_owned(),
        text_hash: TEXT_HASH.to_owned(),
        actor: "support-form".to_owned(),
        occurred_at: None,
    }
}

async fn decision(
    consent: &mut pdm_proto::consent::v1::consent_service_client::ConsentServiceClient<
        tonic::transport::Channel,
    >,
    subject: &str,
    purpose: &str,
) -> anyhow::Result<pb::Decision> {
    consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .ok_or_else(|| anyhow::anyhow!("no decision"))
}

#[tokio::test]
async fn we_always_ask_for_your_permission_before_using_sensitive_details_in_every_region()
-> anyhow::Result<()> {
    // Every special category is listed as such and rests on consent everywhere, even where
    // the law would let other purposes rest on legitimate interests.
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let purposes = consent
        .list_purposes(pb::ListPurposesRequest {})
        .await?
        .into_inner()
        .purposes;
    let special: Vec<&pb::Purpose> = purposes.iter().filter(|p| p.special_category).collect();
    assert_eq!(
        special.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
        CATEGORIES
    );
    for p in &special {
        assert!(p.refusable, "{}", p.key);
        assert!(
            p.legal_bases
                .iter()
                .all(|b| b.legal_basis == LegalBasis::Consent as i32),
            "{}",
            p.key
        );
    }
    assert!(
        purposes
            .iter()
            .filter(|p| !CATEGORIES.contains(&p.key.as_str()))
            .all(|p| !p.special_category)
    );

    for region in [Region::Uk, Region::Us, Region::In] {
        let subject = mesh
            .sign_up(&Person {
                region,
                ..Person::new()
            })
            .await?;
        for key in CATEGORIES {
            let d = decision(&mut consent, &subject, key).await?;
            assert!(!d.allowed, "{key} in {region:?}");
            assert_eq!(d.reason, Reason::NoConsent as i32, "{key} in {region:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn we_always_ask_for_your_permission_before_collecting_or_using_any_sensitive_personal_details()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // Explicit consent for health, recorded as an explicit grant of its own.
    let entry = consent
        .grant_consent(grant(&subject, "special_category_health", Source::WebForm))
        .await?
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.kind, LedgerEntryKind::ExplicitGrant as i32);
    assert_eq!(
        entry.text_hash, TEXT_HASH,
        "the statement shown is the proof"
    );
    let d = decision(&mut consent, &subject, "special_category_health").await?;
    assert!(d.allowed);
    assert_eq!(
        (d.legal_basis, d.reason),
        (LegalBasis::Consent as i32, Reason::ConsentGiven as i32)
    );
    // One category's consent opens no other.
    let d = decision(&mut consent, &subject, "special_category_religion").await?;
    assert_eq!(d.reason, Reason::NoConsent as i32);
    // The batch check (what identity asks) agrees.
    let batch = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: ["special_category_health", "special_category_religion"]
                .into_iter()
                .map(|purpose| pb::CheckItem {
                    subject_id: subject.clone(),
                    purpose: purpose.into(),
                })
                .collect(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decisions;
    assert_eq!(
        batch.iter().map(|d| d.allowed).collect::<Vec<_>>(),
        [true, false]
    );

    // Ordinary purposes keep ordinary grants.
    let entry = consent
        .grant_consent(grant(&subject, "testimonials", Source::WebForm))
        .await?
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.kind, LedgerEntryKind::Grant as i32);

    // The history shows the explicit grant apart from the ordinary one.
    let history = consent
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries;
    assert_eq!(
        history
            .iter()
            .map(|e| (e.kind, e.purpose.as_str()))
            .collect::<Vec<_>>(),
        [
            (
                LedgerEntryKind::ExplicitGrant as i32,
                "special_category_health"
            ),
            (LedgerEntryKind::Grant as i32, "testimonials"),
        ]
    );

    // Withdrawn at any time, effective for the very next check.
    consent
        .withdraw_consent(pb::WithdrawConsentRequest {
            subject_id: subject.clone(),
            purpose: "special_category_health".into(),
            source: Source::WebForm as i32,
            actor: "settings-page".into(),
        })
        .await?;
    let d = decision(&mut consent, &subject, "special_category_health").await?;
    assert_eq!(d.reason, Reason::Withdrawn as i32);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn we_always_ask_for_your_permission_ourselves_imported_consent_to_sensitive_details_is_refused()
-> anyhow::Result<()> {
    // Explicitness cannot be shown for consent collected elsewhere: an import of one is
    // INVALID_ARGUMENT on the source, and nothing is stored.
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let subject = mesh.sign_up(&Person::new()).await?;
    let db = mesh.connect_db("consent").await?;
    let before = rows(&db, "consent_events").await;

    let err = consent
        .grant_consent(grant(&subject, "special_category_health", Source::Import))
        .await
        .expect_err("imported");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err), ["source"]);
    assert_eq!(rows(&db, "consent_events").await, before);
    let d = decision(&mut consent, &subject, "special_category_health").await?;
    assert_eq!(d.reason, Reason::NoConsent as i32);

    // Imports of ordinary consents still work.
    consent
        .grant_consent(grant(&subject, "testimonials", Source::Import))
        .await?;
    Ok(())
}
