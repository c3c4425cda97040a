//! The consent facade's catalogue, state, proof and choice calls against real identity and
//! consent services: the catalogue read as `Purpose`s, do-not-sell, restriction and an
//! objection recorded and seen in `Consents`, an unsubscribe link followed (twice), the
//! ledger paged back as `LedgerEntry`s in order, and bad input as field violations and an
//! unmet `LEGAL_BASIS` precondition.

mod support;

use pdm_client::{
    PdmError,
    consent::{ConsentStatus, Grant, LedgerEntryKind, LegalBasis, Region, Source},
    types::{Channel, MessageKind, Reason},
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_testkit::{TestMesh, fake::Person};
use support::{bad_fields, client};

const ACTOR: &str = "privacy-settings";

#[tokio::test]
async fn choices_recorded_through_the_facade_show_in_the_state_and_the_ledger() -> anyhow::Result<()>
{
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client(&mesh)?.consent()?;

    let catalogue = consent.list_purposes().await?;
    let purpose = |key: &str| {
        catalogue
            .iter()
            .find(|p| p.key == key)
            .ok_or_else(|| anyhow::anyhow!("{key} not in the catalogue"))
    };
    let marketing = purpose("marketing_email")?;
    assert!(marketing.direct_marketing && marketing.objectable && marketing.refusable);
    assert_eq!(marketing.legal_basis_in(Region::Eea), LegalBasis::Consent);
    assert!(purpose("special_category_health")?.special_category);
    assert!(!purpose("service_provision")?.objectable);

    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;
    consent
        .grant(&Grant {
            subject_id: subject.clone(),
            purpose: "marketing_email".to_owned(),
            policy_version: "2024-06-28".to_owned(),
            text_hash: "c".repeat(64),
            actor: "newsletter-form".to_owned(),
        })
        .await?;
    let state = consent.get_consents(&subject).await?;
    assert_eq!(
        (state.subject_id.as_str(), state.region),
        (subject.as_str(), Region::Eea)
    );
    assert!(!state.restricted && !state.do_not_sell && state.opted_out_channels.is_empty());
    assert_eq!(state.purposes.len(), catalogue.len());
    let email = state
        .purpose("marketing_email")
        .ok_or_else(|| anyhow::anyhow!("no marketing_email state"))?;
    assert_eq!(email.consent, ConsentStatus::Granted);
    assert!(email.decision.allowed && !email.objected, "{email:?}");

    let sold = consent.set_do_not_sell(&subject, true, ACTOR).await?;
    let objected = consent
        .record_objection(&subject, "organisation_insights", false, ACTOR)
        .await?;
    assert!(objected.sequence > sold.sequence);
    let restricted = consent.set_restriction(&subject, true, ACTOR).await?;
    let decision = consent
        .check(&subject, "marketing_email", Some(&restricted.token))
        .await?;
    assert_eq!(
        (decision.allowed, decision.reason),
        (false, Reason::Restricted)
    );
    let state = consent.get_consents(&subject).await?;
    assert!(state.restricted && state.do_not_sell, "{state:?}");
    assert!(
        state
            .purpose("organisation_insights")
            .is_some_and(|p| p.objected),
        "{state:?}"
    );
    consent.set_restriction(&subject, false, ACTOR).await?;

    // An unsubscribe link: the opt-out it stands for, once.
    let link = consent
        .issue_unsubscribe_link(&subject, Channel::Email)
        .await?;
    assert!(!link.token.is_empty() && link.token.len() <= 128);
    assert!(link.expires_at > Some(std::time::SystemTime::now()));
    let first = consent.unsubscribe(&link.token).await?;
    assert_eq!(first.channel, Channel::Email);
    assert!(!first.already_used && first.written.sequence > restricted.sequence);
    let decision = consent
        .can_contact(
            &subject,
            Channel::Email,
            MessageKind::Promotional,
            Some(&first.written.token),
        )
        .await?;
    assert_eq!(
        (decision.allowed, decision.reason),
        (false, Reason::OptedOut)
    );
    let second = consent.unsubscribe(&link.token).await?;
    assert!(
        second.already_used && second.written.sequence == 0,
        "{second:?}"
    );
    assert_eq!(
        consent.get_consents(&subject).await?.opted_out_channels,
        [Channel::Email]
    );

    // The proof, two entries a page, oldest first.
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = consent.get_consent_history(&subject, after, 2).await?;
        assert!(page.entries.len() <= 2, "{page:?}");
        entries.extend(page.entries);
        match page.next_after_sequence {
            Some(next) => after = next,
            None => break,
        }
    }
    let kinds: Vec<(LedgerEntryKind, Source)> =
        entries.iter().map(|e| (e.kind, e.source)).collect();
    assert_eq!(
        kinds,
        [
            (LedgerEntryKind::Grant, Source::Api),
            (LedgerEntryKind::DoNotSell, Source::Api),
            (LedgerEntryKind::Object, Source::Api),
            (LedgerEntryKind::Restrict, Source::Api),
            (LedgerEntryKind::Unrestrict, Source::Api),
            (LedgerEntryKind::OptOut, Source::EmailLink),
        ]
    );
    assert!(entries.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let grant = &entries[0];
    assert_eq!(grant.purpose.as_deref(), Some("marketing_email"));
    assert_eq!(grant.policy_version.as_deref(), Some("2024-06-28"));
    assert_eq!(grant.actor.as_deref(), Some("newsletter-form"));
    assert_eq!(entries[5].channel, Some(Channel::Email));
    assert!(
        entries
            .iter()
            .all(|e| e.subject_id == subject && e.recorded_at.is_some())
    );

    // An objection to a purpose that rests on the contract: the unmet precondition named.
    match consent
        .record_objection(&subject, "service_provision", false, ACTOR)
        .await
    {
        Err(PdmError::FailedPrecondition { preconditions, .. }) => {
            let unmet: Vec<(&str, &str)> = preconditions
                .iter()
                .map(|p| (p.kind.as_str(), p.subject.as_str()))
                .collect();
            assert_eq!(unmet, [("LEGAL_BASIS", "purpose")]);
        }
        other => panic!("{other:?}"),
    }

    // Bad input: every bad field named, nothing written.
    let before = consent
        .get_consent_history(&subject, 0, 1000)
        .await?
        .entries;
    assert_eq!(
        bad_fields(consent.set_do_not_sell("not-a-subject", true, "").await),
        ["actor", "subject_id"]
    );
    assert_eq!(
        bad_fields(
            consent
                .set_restriction(&subject, true, "card 4111 1111 1111 1111")
                .await
        ),
        ["actor"]
    );
    assert_eq!(
        bad_fields(
            consent
                .record_objection("", "Astrology!", false, ACTOR)
                .await
        ),
        ["purpose", "subject_id"]
    );
    assert_eq!(
        bad_fields(consent.get_consents("not-a-subject").await),
        ["subject_id"]
    );
    assert_eq!(
        bad_fields(consent.get_consent_history("", -1, 1001).await),
        ["after_sequence", "page_size", "subject_id"]
    );
    assert_eq!(
        bad_fields(
            consent
                .issue_unsubscribe_link("not-a-subject", Channel::Ads)
                .await
        ),
        ["channel", "subject_id"]
    );
    let mut forged = link.token.clone();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(bad_fields(consent.unsubscribe(&forged).await), ["token"]);
    assert_eq!(
        consent
            .get_consent_history(&subject, 0, 1000)
            .await?
            .entries,
        before
    );
    Ok(())
}
