//! Contact decisions: promotional messages need consent and honour opt-outs at once;
//! messages that are part of the service always go out ("Marketing Our Services and
//! Increasing Engagement", "Communicating with You About Our Services", "How to access and
//! control your information").

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, Channel, LedgerEntryKind, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
};
use pdm_testkit::{TestMesh, fake::Person};
use tonic::transport::Channel as GrpcChannel;

type Client = ConsentServiceClient<GrpcChannel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

const NECESSARY: [MessageKind; 3] = [
    MessageKind::Transactional,
    MessageKind::Administrative,
    MessageKind::Security,
];

async fn can_contact(
    consent: &mut Client,
    subject: &str,
    channel: Channel,
    kind: MessageKind,
) -> anyhow::Result<pb::Decision> {
    Ok(consent
        .can_contact(pb::CanContactRequest {
            subject_id: subject.to_owned(),
            channel: channel as i32,
            kind: kind as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

async fn set_opt_out(
    consent: &mut Client,
    subject: &str,
    channel: Channel,
    opted_out: bool,
) -> anyhow::Result<pb::LedgerEntry> {
    Ok(consent
        .set_contact_preference(pb::SetContactPreferenceRequest {
            subject_id: subject.to_owned(),
            channel: channel as i32,
            opted_out,
            source: Source::EmailLink as i32,
            actor: "unsubscribe-link".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry"))
}

async fn grant(consent: &mut Client, subject: &str, purpose: &str) -> anyhow::Result<()> {
    consent
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".to_owned(),
            text_hash: TEXT_HASH.to_owned(),
            actor: "newsletter-form".to_owned(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn promotional_email_needs_consent() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Uk,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    for channel in [Channel::Email, Channel::Ads, Channel::Sms, Channel::Push] {
        let d = can_contact(&mut consent, &subject, channel, MessageKind::Promotional).await?;
        assert!(!d.allowed, "{channel:?} without consent");
        assert_eq!(d.reason, Reason::NoConsent as i32, "{channel:?}");
    }
    grant(&mut consent, &subject, "marketing_email").await?;
    let d = can_contact(
        &mut consent,
        &subject,
        Channel::Email,
        MessageKind::Promotional,
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::ConsentGiven as i32);
    // Consent to email is not consent to text messages.
    let d = can_contact(
        &mut consent,
        &subject,
        Channel::Sms,
        MessageKind::Promotional,
    )
    .await?;
    assert_eq!(d.reason, Reason::NoConsent as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_opt_out_stops_promotions_at_once_but_never_necessary_messages() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    grant(&mut consent, &subject, "marketing_email").await?;
    grant(&mut consent, &subject, "marketing_push").await?;
    assert!(
        can_contact(
            &mut consent,
            &subject,
            Channel::Email,
            MessageKind::Promotional
        )
        .await?
        .allowed
    );

    let entry = set_opt_out(&mut consent, &subject, Channel::Email, true).await?;
    assert_eq!(entry.kind, LedgerEntryKind::OptOut as i32);
    assert_eq!(entry.channel, Channel::Email as i32);
    assert_eq!(entry.source, Source::EmailLink as i32);

    // "How to access and control your information" allows up to 15 business days for an
    // opt-out to take effect: ours holds for the very next check.
    let d = can_contact(
        &mut consent,
        &subject,
        Channel::Email,
        MessageKind::Promotional,
    )
    .await?;
    assert!(!d.allowed, "opt-out is effective immediately");
    assert_eq!(d.reason, Reason::OptedOut as i32);
    // One choice, one answer: the decision APIs agree with CanContact.
    let checked = consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(
        checked, d,
        "CheckProcessing(marketing_email) after an email opt-out"
    );
    let batch = consent
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: vec![pb::CheckItem {
                subject_id: subject.clone(),
                purpose: "marketing_email".to_owned(),
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(batch.decisions, [d]);
    // "Communicating with You About Our Services": "you won't be able to opt-out of
    // receiving these types of communications, since they are a necessary part of the
    // services".
    for kind in NECESSARY {
        let d = can_contact(&mut consent, &subject, Channel::Email, kind).await?;
        assert!(d.allowed, "{kind:?} after an opt-out");
        assert_eq!(d.reason, Reason::NecessaryMessage as i32, "{kind:?}");
    }
    // The opt-out is per channel.
    assert!(
        can_contact(
            &mut consent,
            &subject,
            Channel::Push,
            MessageKind::Promotional
        )
        .await?
        .allowed
    );
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(state.opted_out_channels, [Channel::Email as i32]);

    // Opting back in restores promotions: the consent was never withdrawn.
    let entry = set_opt_out(&mut consent, &subject, Channel::Email, false).await?;
    assert_eq!(entry.kind, LedgerEntryKind::OptIn as i32);
    let d = can_contact(
        &mut consent,
        &subject,
        Channel::Email,
        MessageKind::Promotional,
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::ConsentGiven as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn necessary_messages_go_out_without_any_marketing_consent() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    set_opt_out(&mut consent, &subject, Channel::Sms, true).await?;
    for channel in [Channel::Email, Channel::Ads, Channel::Sms, Channel::Push] {
        for kind in NECESSARY {
            let d = can_contact(&mut consent, &subject, channel, kind).await?;
            assert!(d.allowed, "{channel:?} {kind:?}");
            assert_eq!(d.reason, Reason::NecessaryMessage as i32);
        }
    }
    let d = can_contact(
        &mut consent,
        &subject,
        Channel::Sms,
        MessageKind::Promotional,
    )
    .await?;
    assert_eq!(d.reason, Reason::OptedOut as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_unknown_subject_is_never_contacted() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let nobody = uuid::Uuid::now_v7().to_string();
    for kind in [
        MessageKind::Promotional,
        MessageKind::Transactional,
        MessageKind::Security,
    ] {
        let d = can_contact(&mut consent, &nobody, Channel::Email, kind).await?;
        assert!(!d.allowed, "{kind:?}");
        assert_eq!(d.reason, Reason::UnknownSubject as i32, "{kind:?}");
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
