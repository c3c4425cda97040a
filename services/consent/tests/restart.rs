//! Decisions and the change stream survive a restart: the ledger is the truth, the
//! in-memory state is rebuilt from it, and a watcher resumes from its cursor without loss
//! or duplicates ("Consent to be obtained": consent is recorded with proof and honoured
//! until withdrawn).

use std::time::Duration;

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, Channel, LedgerEntryKind, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
};
use pdm_testkit::{TestMesh, assert::field_violations, fake::Person};
use pdm_tls::identity::Caller;
use tonic::{Streaming, transport::Channel as GrpcChannel};

type Client = ConsentServiceClient<GrpcChannel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
/// How long a watcher waits for a change it expects (the change is already committed).
const WAIT: Duration = Duration::from_secs(10);

const CHANNELS: [Channel; 4] = [Channel::Email, Channel::Ads, Channel::Sms, Channel::Push];
const KINDS: [MessageKind; 4] = [
    MessageKind::Promotional,
    MessageKind::Transactional,
    MessageKind::Administrative,
    MessageKind::Security,
];

async fn grant(consent: &mut Client, subject: &str, purpose: &str) -> anyhow::Result<i64> {
    Ok(consent
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".to_owned(),
            text_hash: TEXT_HASH.to_owned(),
            actor: "web-signup".to_owned(),
            occurred_at: None,
        })
        .await?
        .into_inner()
        .entry
        .expect("entry")
        .sequence)
}

async fn withdraw(consent: &mut Client, subject: &str, purpose: &str) -> anyhow::Result<i64> {
    Ok(consent
        .withdraw_consent(pb::WithdrawConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            actor: "settings-page".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry")
        .sequence)
}

async fn opt_out(consent: &mut Client, subject: &str, channel: Channel) -> anyhow::Result<i64> {
    Ok(consent
        .set_contact_preference(pb::SetContactPreferenceRequest {
            subject_id: subject.to_owned(),
            channel: channel as i32,
            opted_out: true,
            source: Source::EmailLink as i32,
            actor: "unsubscribe-link".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry")
        .sequence)
}

async fn restrict(consent: &mut Client, subject: &str) -> anyhow::Result<i64> {
    Ok(consent
        .set_restriction(pb::SetRestrictionRequest {
            subject_id: subject.to_owned(),
            restricted: true,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry")
        .sequence)
}

async fn do_not_sell(consent: &mut Client, subject: &str) -> anyhow::Result<i64> {
    Ok(consent
        .set_do_not_sell(pb::SetDoNotSellRequest {
            subject_id: subject.to_owned(),
            do_not_sell: true,
            source: Source::WebForm as i32,
            actor: "do-not-sell-link".to_owned(),
        })
        .await?
        .into_inner()
        .entry
        .expect("entry")
        .sequence)
}

/// Everything a caller can learn about a subject's decisions: current state, every
/// processing decision and every contact decision.
async fn every_decision(
    consent: &mut Client,
    subject: &str,
) -> anyhow::Result<(pb::GetConsentsResponse, Vec<pb::Decision>)> {
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner();
    let mut decisions = Vec::new();
    for p in &state.purposes {
        decisions.push(
            consent
                .check_processing(pb::CheckProcessingRequest {
                    subject_id: subject.to_owned(),
                    purpose: p.purpose.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .decision
                .expect("decision"),
        );
    }
    for channel in CHANNELS {
        for kind in KINDS {
            decisions.push(
                consent
                    .can_contact(pb::CanContactRequest {
                        subject_id: subject.to_owned(),
                        channel: channel as i32,
                        kind: kind as i32,
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .decision
                    .expect("decision"),
            );
        }
    }
    Ok((state, decisions))
}

async fn watch(
    consent: &mut Client,
    after: i64,
) -> anyhow::Result<Streaming<pb::WatchConsentChangesResponse>> {
    Ok(consent
        .watch_consent_changes(pb::WatchConsentChangesRequest {
            after_sequence: after,
        })
        .await?
        .into_inner())
}

/// The next entry of a watch stream, waiting at most [`WAIT`] for it.
async fn next_entry(
    stream: &mut Streaming<pb::WatchConsentChangesResponse>,
) -> anyhow::Result<pb::LedgerEntry> {
    let message = tokio::time::timeout(WAIT, stream.message())
        .await
        .map_err(|_| anyhow::anyhow!("no change arrived within {WAIT:?}"))??
        .ok_or_else(|| anyhow::anyhow!("the watch stream ended"))?;
    message
        .entry
        .ok_or_else(|| anyhow::anyhow!("a message without an entry"))
}

#[tokio::test]
async fn a_restart_keeps_every_decision() -> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let european = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let californian = Person {
        region: Region::UsCa,
        ..Person::new()
    };
    let eea = mesh.sign_up(&european).await?;
    let ca = mesh.sign_up(&californian).await?;
    let restricted = mesh.sign_up(&Person::new()).await?;
    let mut consent = mesh.consent();

    grant(&mut consent, &eea, "product_analytics").await?;
    grant(&mut consent, &eea, "marketing_email").await?;
    grant(&mut consent, &eea, "marketing_push").await?;
    withdraw(&mut consent, &eea, "marketing_push").await?;
    opt_out(&mut consent, &eea, Channel::Email).await?;
    grant(&mut consent, &ca, "marketing_ads").await?;
    do_not_sell(&mut consent, &ca).await?;
    grant(&mut consent, &restricted, "testimonials").await?;
    restrict(&mut consent, &restricted).await?;

    let subjects = [&eea, &ca, &restricted];
    let mut before = Vec::new();
    for subject in subjects {
        before.push(every_decision(&mut consent, subject).await?);
    }
    // The states differ in the ways that matter, so the comparison below means something.
    let (eea_state, eea_decisions) = &before[0];
    assert_eq!(eea_state.opted_out_channels, [Channel::Email as i32]);
    assert!(
        eea_decisions
            .iter()
            .any(|d| d.reason == Reason::Withdrawn as i32)
    );
    assert!(
        eea_decisions
            .iter()
            .any(|d| d.reason == Reason::OptedOut as i32)
    );
    assert!(before[1].0.do_not_sell);
    assert!(before[2].0.restricted);

    mesh.restart("consent").await?;
    let mut consent = mesh.consent();
    for (subject, was) in subjects.iter().zip(&before) {
        let now = every_decision(&mut consent, subject).await?;
        assert_eq!(&now, was, "decisions changed across a restart");
    }
    mesh.logs().assert_clean(&european.secrets());
    mesh.logs().assert_clean(&californian.secrets());
    Ok(())
}

#[tokio::test]
async fn a_watcher_resumes_from_its_cursor_after_a_restart_without_loss_or_duplicates()
-> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    let mut written = vec![
        grant(&mut consent, &subject, "product_analytics").await?,
        grant(&mut consent, &subject, "marketing_email").await?,
        opt_out(&mut consent, &subject, Channel::Sms).await?,
        grant(&mut consent, &subject, "testimonials").await?,
    ];

    // Read the first two entries, then go away.
    let mut stream = watch(&mut consent, 0).await?;
    let first = next_entry(&mut stream).await?;
    let second = next_entry(&mut stream).await?;
    assert_eq!([first.sequence, second.sequence], written[..2]);
    assert_eq!(first.subject_id, subject);
    assert_eq!(first.kind, LedgerEntryKind::Grant as i32);
    assert_eq!(first.text_hash, TEXT_HASH);
    let cursor = second.sequence;
    drop(stream);

    // More changes while nobody watches, then the server restarts.
    written.push(withdraw(&mut consent, &subject, "marketing_email").await?);
    written.push(restrict(&mut consent, &subject).await?);
    written.push(do_not_sell(&mut consent, &subject).await?);
    mesh.restart("consent").await?;
    let mut consent = mesh.consent();

    let mut stream = watch(&mut consent, cursor).await?;
    let mut resumed = Vec::new();
    for _ in &written[2..] {
        resumed.push(next_entry(&mut stream).await?);
    }
    let seqs: Vec<i64> = resumed.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        written[2..],
        "exactly the missed entries, in sequence order"
    );
    let kinds: Vec<i32> = resumed.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            LedgerEntryKind::OptOut as i32,
            LedgerEntryKind::Grant as i32,
            LedgerEntryKind::Withdraw as i32,
            LedgerEntryKind::Restrict as i32,
            LedgerEntryKind::DoNotSell as i32,
        ]
    );
    // Nothing repeats after the catch-up: the next message is the next change.
    let live = grant(&mut consent, &subject, "marketing_sms").await?;
    let next = next_entry(&mut stream).await?;
    assert_eq!(next.sequence, live, "no duplicates before the live change");
    assert_eq!(next.purpose, "marketing_sms");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn remembered_subjects_are_decided_while_identity_is_down() -> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let known_person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let known = mesh.sign_up(&known_person).await?;
    let stranger_person = Person::new();
    let stranger = mesh.sign_up(&stranger_person).await?;
    let mut consent = mesh.consent();
    grant(&mut consent, &known, "product_analytics").await?;
    let (before, decisions) = every_decision(&mut consent, &known).await?;

    // Identity goes away and consent restarts with an empty cache: for the mesh's own
    // services the region consent remembered still decides; a subject it never resolved
    // cannot be decided.
    mesh.stop("identity").await?;
    mesh.restart("consent").await?;
    let mut rights = ConsentServiceClient::new(
        mesh.channel_as(pdm_consent::NAME, &Caller::Service("rights".into()))?,
    );
    assert_eq!(
        every_decision(&mut rights, &known).await?,
        (before, decisions)
    );
    // A company client is scoped to its linked subjects, which only identity can confirm:
    // it hears UNAVAILABLE (retry), never a decision and never "unknown subject".
    let mut consent = mesh.consent();
    let err = consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: known.clone(),
            purpose: "support".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("the link cannot be confirmed");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let mut consent = rights;
    let err = consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: stranger.clone(),
            purpose: "support".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("identity is down");
    assert_eq!(err.code(), tonic::Code::Unavailable);

    // The failure was not remembered as "unknown subject".
    mesh.restart("identity").await?;
    let d = consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: stranger.clone(),
            purpose: "support".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(d.allowed, "{d:?}");
    mesh.logs().assert_clean(&known_person.secrets());
    mesh.logs().assert_clean(&stranger_person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_live_watcher_receives_changes_made_after_it_subscribed() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let last = grant(&mut consent, &subject, "testimonials").await?;

    let mut watcher = mesh.consent();
    let mut stream = watch(&mut watcher, last).await?;
    let seq = withdraw(&mut consent, &subject, "testimonials").await?;
    let entry = next_entry(&mut stream).await?;
    assert_eq!(entry.sequence, seq);
    assert_eq!(entry.subject_id, subject);
    assert_eq!(entry.kind, LedgerEntryKind::Withdraw as i32);
    assert_eq!(entry.purpose, "testimonials");

    // A second subject's change reaches the same watcher, after the first.
    let other = Person::new();
    let other_subject = mesh.sign_up(&other).await?;
    let seq = opt_out(&mut consent, &other_subject, Channel::Push).await?;
    let entry = next_entry(&mut stream).await?;
    assert_eq!(
        (entry.sequence, entry.subject_id.as_str()),
        (seq, other_subject.as_str())
    );
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&other.secrets());
    Ok(())
}

#[tokio::test]
async fn watchers_joining_while_changes_are_made_see_each_change_exactly_once() -> anyhow::Result<()>
{
    const WRITES: usize = 60;
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut writer_client = mesh.consent();
    let writer_subject = subject.clone();
    let (progress, mut written) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for i in 0..WRITES {
            let seq = if i % 2 == 0 {
                grant(&mut writer_client, &writer_subject, "testimonials").await?
            } else {
                withdraw(&mut writer_client, &writer_subject, "testimonials").await?
            };
            seqs.push(seq);
            let _ = progress.send(seq);
        }
        anyhow::Ok(seqs)
    });

    // Watchers join from the start of the ledger at different points of the burst, each
    // racing the catch-up from the database against the live feed.
    let mut consent = mesh.consent();
    let mut streams = vec![watch(&mut consent, 0).await?];
    let mut seen = 0;
    while written.recv().await.is_some() {
        seen += 1;
        if seen % 10 == 5 {
            streams.push(watch(&mut consent, 0).await?);
        }
    }
    let seqs = writer.await??;
    assert!(streams.len() >= 6);
    let sentinel = opt_out(&mut consent, &subject, Channel::Email).await?;
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..seqs.len() {
            got.push(next_entry(stream).await?.sequence);
        }
        assert_eq!(got, seqs, "watcher {i}: every change once, in order");
        assert_eq!(
            next_entry(stream).await?.sequence,
            sentinel,
            "watcher {i}: nothing repeated"
        );
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_stream_open_across_a_restart_ends_instead_of_hanging() -> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let seq = grant(&mut consent, &subject, "testimonials").await?;
    let mut stream = watch(&mut consent, 0).await?;
    assert_eq!(next_entry(&mut stream).await?.sequence, seq);

    mesh.restart("consent").await?;
    // The server ended the stream when it shut down: the watcher learns at once and can
    // resume from its cursor.
    let ended = tokio::time::timeout(WAIT, stream.message())
        .await
        .map_err(|_| anyhow::anyhow!("the stream did not end when the server stopped"))?;
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
    let mut consent = mesh.consent();
    let mut stream = watch(&mut consent, seq).await?;
    let later = withdraw(&mut consent, &subject, "testimonials").await?;
    assert_eq!(next_entry(&mut stream).await?.sequence, later);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_negative_cursor_is_refused() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    mesh.sign_up(&person).await?;
    let err = mesh
        .consent()
        .watch_consent_changes(pb::WatchConsentChangesRequest { after_sequence: -1 })
        .await
        .expect_err("negative cursor");
    assert_eq!(field_violations(&err), ["after_sequence"]);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
