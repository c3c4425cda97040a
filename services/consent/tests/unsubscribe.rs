//! Unsubscribe links ("Marketing Our Services": "you can opt out of receiving marketing
//! communications from us … by following the unsubscribe instructions in any marketing
//! email"): a signed, single-use, expiring link records the opt-out with source
//! EMAIL_LINK; every API sees it at once; forged, expired and erased links do nothing.

use std::sync::Arc;

use chrono::Duration;
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, Channel, LedgerEntryKind, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
    subject::v1::{EraseSubjectRequest, subject_data_service_client::SubjectDataServiceClient},
};
use pdm_runtime::ManualClock;
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows},
    fake::Person,
    start_clock,
};
use tonic::{Code, transport::Channel as GrpcChannel};

type Client = ConsentServiceClient<GrpcChannel>;

async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .clock(clock.clone())
        .start()
        .await
}

/// A person in the EEA who signed up for the newsletter.
async fn subscriber(mesh: &Mesh) -> anyhow::Result<String> {
    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;
    mesh.consent()
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".into(),
            actor: "newsletter-form".into(),
            occurred_at: None,
        })
        .await?;
    Ok(subject)
}

async fn link(consent: &mut Client, subject: &str, channel: Channel) -> anyhow::Result<String> {
    Ok(consent
        .issue_unsubscribe_link(pb::IssueUnsubscribeLinkRequest {
            subject_id: subject.to_owned(),
            channel: channel as i32,
        })
        .await?
        .into_inner()
        .token)
}

async fn unsubscribe(
    consent: &mut Client,
    token: &str,
) -> Result<pb::UnsubscribeResponse, tonic::Status> {
    consent
        .unsubscribe(pb::UnsubscribeRequest {
            token: token.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn promotional_email(consent: &mut Client, subject: &str) -> anyhow::Result<Reason> {
    let d = consent
        .can_contact(pb::CanContactRequest {
            subject_id: subject.to_owned(),
            channel: Channel::Email as i32,
            kind: MessageKind::Promotional as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .unwrap_or_default();
    Ok(Reason::try_from(d.reason).unwrap_or_default())
}

async fn ledger_len(consent: &mut Client, subject: &str) -> anyhow::Result<usize> {
    Ok(consent
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.to_owned(),
            after_sequence: 0,
            page_size: 1000,
        })
        .await?
        .into_inner()
        .entries
        .len())
}

#[tokio::test]
async fn you_can_opt_out_by_following_the_unsubscribe_instructions_in_any_marketing_email()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut consent = mesh.consent();
    let subject = subscriber(&mesh).await?;
    assert_eq!(
        promotional_email(&mut consent, &subject).await?,
        Reason::ConsentGiven
    );

    let issued = consent
        .issue_unsubscribe_link(pb::IssueUnsubscribeLinkRequest {
            subject_id: subject.clone(),
            channel: Channel::Email as i32,
        })
        .await?
        .into_inner();
    let token = issued.token;
    assert!(token.len() <= 128, "{token}");
    assert!(!token.contains(&subject), "the token names no one");
    let expires = issued.expires_at.expect("expiry");
    assert_eq!(
        expires.seconds,
        (pdm_runtime::Clock::now(clock.as_ref()) + Duration::days(90)).timestamp(),
        "valid 90 days by default"
    );

    // Whoever presents the link (the page it opens) opts the person out: the token is the
    // authority.
    let done = unsubscribe(&mut consent, &token).await?;
    assert!(!done.already_used);
    assert_eq!(done.channel, Channel::Email as i32);
    let entry = done.entry.expect("ledger entry");
    assert_eq!(entry.kind, LedgerEntryKind::OptOut as i32);
    assert_eq!(entry.source, Source::EmailLink as i32);
    assert_eq!(entry.channel, Channel::Email as i32);
    assert_eq!(entry.actor, "unsubscribe-link");

    // One choice, one answer, at once.
    assert_eq!(
        promotional_email(&mut consent, &subject).await?,
        Reason::OptedOut
    );
    let check = consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .unwrap_or_default();
    assert_eq!(check.reason, Reason::OptedOut as i32);

    // Single use: a second click is told so and writes nothing.
    let entries = ledger_len(&mut consent, &subject).await?;
    let again = unsubscribe(&mut consent, &token).await?;
    assert!(again.already_used);
    assert!(again.entry.is_none());
    assert_eq!(ledger_len(&mut consent, &subject).await?, entries);

    // A link for SMS stops SMS only.
    let sms = link(&mut consent, &subject, Channel::Sms).await?;
    assert_eq!(
        unsubscribe(&mut consent, &sms).await?.channel,
        Channel::Sms as i32
    );
    Ok(())
}

#[tokio::test]
async fn unsubscribe_links_expire_and_cannot_be_forged() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut consent = mesh.consent();
    let subject = subscriber(&mesh).await?;
    let db = mesh.connect_db("consent").await?;
    let token = link(&mut consent, &subject, Channel::Email).await?;
    let entries = ledger_len(&mut consent, &subject).await?;

    // Altered or made up: refused before anything is read, nothing written.
    let mut altered = token.clone();
    let last = altered.pop().expect("a character");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let (id, _) = token.split_once('.').expect("id.signature");
    for bad in [
        altered,
        format!("{id}.AAAAAAAAAAAAAAAAAAAAAA"),
        id.to_owned(),
        "4111 1111 1111 1111".to_owned(),
    ] {
        let err = unsubscribe(&mut consent, &bad)
            .await
            .expect_err("a forged token");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(field_violations(&err), ["token"], "{bad}");
    }
    for (bad, why) in [(String::new(), "empty"), ("a".repeat(129), "too long")] {
        let err = unsubscribe(&mut consent, &bad).await.expect_err(why);
        assert_eq!(field_violations(&err), ["token"], "{why}");
    }

    // Ads carry no message to put a link in; bad fields are named, nothing is stored.
    let links_before = rows(&db, "unsubscribe_links").await;
    let err = consent
        .issue_unsubscribe_link(pb::IssueUnsubscribeLinkRequest {
            subject_id: "not-a-subject".into(),
            channel: Channel::Ads as i32,
        })
        .await
        .expect_err("bad fields");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(fields, ["channel", "subject_id"]);
    assert_eq!(rows(&db, "unsubscribe_links").await, links_before);

    // Past its validity the link does nothing.
    clock.advance(Duration::days(90));
    let err = unsubscribe(&mut consent, &token)
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(ledger_len(&mut consent, &subject).await?, entries);
    assert_eq!(
        promotional_email(&mut consent, &subject).await?,
        Reason::ConsentGiven
    );
    Ok(())
}

#[tokio::test]
async fn an_erased_persons_unsubscribe_links_stop_working() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut consent = mesh.consent();
    let subject = subscriber(&mesh).await?;
    let db = mesh.connect_db("consent").await?;
    let token = link(&mut consent, &subject, Channel::Email).await?;
    assert_eq!(rows(&db, "unsubscribe_links").await, 1);

    SubjectDataServiceClient::new(mesh.channel("consent"))
        .erase_subject(EraseSubjectRequest {
            request_id: "erase-unsubscribe-1".into(),
            subject_id: subject.clone(),
        })
        .await?;
    assert_eq!(rows(&db, "unsubscribe_links").await, 0, "no row names them");
    let err = unsubscribe(&mut consent, &token).await.expect_err("erased");
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn the_validity_of_unsubscribe_links_is_bounded() -> anyhow::Result<()> {
    for days in ["0", "366"] {
        let err = TestMesh::new()
            .with(Identity)
            .with(Consent)
            .setting("consent.unsubscribe_link_days", days)
            .start()
            .await
            .expect_err("the service refuses to start");
        let message = format!("{err:#}");
        assert!(
            message.contains("consent.unsubscribe_link_days"),
            "{days}: {message}"
        );
    }
    Ok(())
}

/// The subject's one stored link, read from the raw row: its id and whether it is used.
async fn stored_link(
    db: &sea_orm::DatabaseConnection,
    subject: &str,
) -> anyhow::Result<(String, bool)> {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let placeholder = match db.get_database_backend() {
        DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT link_id, used_at IS NOT NULL AS used FROM unsubscribe_links \
                 WHERE subject_id = {placeholder}"
            ),
            [subject.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no link stored"))?;
    Ok((row.try_get("", "link_id")?, row.try_get("", "used")?))
}

/// A link is spent only with its opt-out stored ("you may unsubscribe at any time"):
/// apart, a stop between marking the link used and recording the opt-out left the person
/// subscribed and every later click answered "already used". Here the ledger refuses the
/// opt-out, as a stop in the middle would leave it: the link must stay usable.
#[tokio::test]
async fn an_unsubscribe_link_is_used_up_with_its_opt_out_or_not_at_all() -> anyhow::Result<()> {
    use pdm_consent::store::{NewEntry, Store};
    use pdm_testkit::faults::{allow_inserts, refuse_inserts};

    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut consent = mesh.consent();
    let subject = subscriber(&mesh).await?;
    let token = link(&mut consent, &subject, Channel::Email).await?;
    let db = mesh.connect_db("consent").await?;
    let (id, _) = stored_link(&db, &subject).await?;
    let store = Store::new(db.clone());
    let opt_out = || NewEntry {
        subject_id: subject.parse().expect("a subject id"),
        kind: LedgerEntryKind::OptOut,
        purpose: None,
        channel: Some(Channel::Email),
        source: Source::EmailLink,
        policy_version: None,
        text_hash: None,
        actor: Some("test".into()),
        occurred_at: chrono::Utc::now(),
    };
    let entries_before = ledger_len(&mut consent, &subject).await?;

    refuse_inserts(&db, "consent_events").await?;
    let refused = store
        .append_using_link(&id, vec![opt_out()], chrono::Utc::now())
        .await;
    assert!(refused.is_err(), "the ledger refused the opt-out");
    assert!(
        !stored_link(&db, &subject).await?.1,
        "a link whose opt-out was not stored is not used up"
    );
    let err = unsubscribe(&mut consent, &token)
        .await
        .expect_err("the ledger refuses");
    assert_ne!(err.code(), Code::Ok);
    assert!(!stored_link(&db, &subject).await?.1);
    assert_eq!(ledger_len(&mut consent, &subject).await?, entries_before);
    allow_inserts(&db, "consent_events").await?;

    let answer = unsubscribe(&mut consent, &token).await?;
    assert!(!answer.already_used, "the click after the failure records");
    assert!(stored_link(&db, &subject).await?.1);
    assert_eq!(
        ledger_len(&mut consent, &subject).await?,
        entries_before + 1
    );
    assert_eq!(
        promotional_email(&mut consent, &subject).await?,
        Reason::OptedOut
    );
    // Spent: a second use stores nothing, through the API or the store.
    assert!(unsubscribe(&mut consent, &token).await?.already_used);
    assert_eq!(
        store
            .append_using_link(&id, vec![opt_out()], chrono::Utc::now())
            .await?,
        None
    );
    assert_eq!(
        ledger_len(&mut consent, &subject).await?,
        entries_before + 1
    );
    Ok(())
}
