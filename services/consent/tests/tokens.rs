//! Consistency tokens, read-your-writes across replicas ("Consent to be obtained": "You may
//! withdraw your consent at any time"; a withdrawal must hold on whichever replica the
//! next check reaches). Every consent write answers a token; a check given it is answered
//! only by a replica that has applied the ledger up to it. Two real replicas of consent on
//! one database, the second with a follower that would not poll for a minute by itself.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, Channel as ContactChannel, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
};
use pdm_testkit::{TestMesh, assert::field_violations, fake::Person};
use tonic::{Code, transport::Channel};

type Client = ConsentServiceClient<Channel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const PURPOSE: &str = "product_analytics";

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

fn withdraw(subject: &str) -> pb::WithdrawConsentRequest {
    pb::WithdrawConsentRequest {
        subject_id: subject.to_owned(),
        purpose: PURPOSE.to_owned(),
        source: Source::Api as i32,
        actor: "settings-page".to_owned(),
    }
}

async fn allowed(client: &mut Client, subject: &str, at_least: &str) -> anyhow::Result<bool> {
    let decision = client
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: PURPOSE.to_owned(),
            at_least: at_least.to_owned(),
        })
        .await?
        .into_inner()
        .decision
        .ok_or_else(|| anyhow::anyhow!("no decision"))?;
    Ok(decision.allowed)
}

#[tokio::test]
async fn a_check_on_another_replica_given_the_writes_token_sees_the_write() -> anyhow::Result<()> {
    // The follower reads the ledger once a minute: only the token makes replica B look.
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .setting("consent.tail_interval_ms", 60_000)
        .start()
        .await?;
    let replica = mesh.start_replica("consent").await?;
    let (mut a, mut b) = (mesh.consent(), ConsentServiceClient::new(replica.channel()));
    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;

    // B caches "no consent" first.
    assert!(!allowed(&mut b, &subject, "").await?);
    let granted = a
        .grant_consent(grant(&subject, PURPOSE))
        .await?
        .into_inner();
    assert!(!granted.consistency_token.is_empty());
    // Without the token B answers from its cache, as before: still no consent.
    assert!(!allowed(&mut b, &subject, "").await?);
    // With it, B applies the ledger up to the grant first.
    assert!(allowed(&mut b, &subject, &granted.consistency_token).await?);

    // And back: a withdrawal on A holds on B for every check given its token.
    let withdrawn = a.withdraw_consent(withdraw(&subject)).await?.into_inner();
    assert!(!allowed(&mut b, &subject, &withdrawn.consistency_token).await?);
    let batch = b
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: vec![pb::CheckItem {
                subject_id: subject.clone(),
                purpose: PURPOSE.to_owned(),
            }],
            at_least: withdrawn.consistency_token.clone(),
        })
        .await?
        .into_inner();
    assert!(!batch.decisions[0].allowed);
    assert_eq!(batch.decisions[0].reason, Reason::Withdrawn as i32);

    // Promotional email: consent on A lets B send; an opt-out on A then stops B.
    let can_email = |at_least: String| pb::CanContactRequest {
        subject_id: subject.clone(),
        channel: ContactChannel::Email as i32,
        kind: MessageKind::Promotional as i32,
        at_least,
    };
    let marketing = a
        .grant_consent(grant(&subject, "marketing_email"))
        .await?
        .into_inner();
    let contact = b
        .can_contact(can_email(marketing.consistency_token.clone()))
        .await?
        .into_inner()
        .decision
        .ok_or_else(|| anyhow::anyhow!("no decision"))?;
    assert!(contact.allowed, "{contact:?}");
    let opted_out = a
        .set_contact_preference(pb::SetContactPreferenceRequest {
            subject_id: subject.clone(),
            channel: ContactChannel::Email as i32,
            opted_out: true,
            source: Source::Api as i32,
            actor: "settings-page".to_owned(),
        })
        .await?
        .into_inner();
    let contact = b
        .can_contact(can_email(opted_out.consistency_token.clone()))
        .await?
        .into_inner()
        .decision
        .ok_or_else(|| anyhow::anyhow!("no decision"))?;
    assert!(!contact.allowed, "{contact:?}");
    assert_eq!(contact.reason, Reason::OptedOut as i32);

    // Tokens grow with the ledger, and GetLedgerPosition's covers every write before it.
    let position = b
        .get_ledger_position(pb::GetLedgerPositionRequest {})
        .await?
        .into_inner();
    assert_eq!(
        position.consistency_token,
        format!("c1.{}", position.sequence)
    );
    assert_eq!(opted_out.consistency_token, position.consistency_token);
    replica.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_token_this_ledger_never_issued_is_refused_with_its_field() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let mut consent = mesh.consent();
    let subject = mesh.sign_up(&Person::new()).await?;
    let granted = consent
        .grant_consent(grant(&subject, PURPOSE))
        .await?
        .into_inner();
    let sequence: i64 = granted
        .consistency_token
        .strip_prefix("c1.")
        .ok_or_else(|| anyhow::anyhow!("{}", granted.consistency_token))?
        .parse()?;
    let ahead = format!("c1.{}", sequence + 1_000);
    for token in ["garbage", "c1.-4", ahead.as_str()] {
        let status = consent
            .check_processing(pb::CheckProcessingRequest {
                subject_id: subject.clone(),
                purpose: PURPOSE.to_owned(),
                at_least: token.to_owned(),
            })
            .await
            .expect_err(token);
        assert_eq!(status.code(), Code::InvalidArgument, "{token}: {status:?}");
        assert_eq!(field_violations(&status), ["at_least"], "{token}");
    }
    // The token of the write itself is good on the replica that wrote it, at once.
    assert!(allowed(&mut consent, &subject, &granted.consistency_token).await?);
    Ok(())
}

/// Renames the ledger's table (`away`) or back, as a failing database looks to consent.
async fn ledger_reachable(mesh: &pdm_testkit::Mesh, reachable: bool) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    let db = mesh.connect_db(pdm_consent::NAME).await?;
    let (from, to) = if reachable {
        ("consent_events_away", "consent_events")
    } else {
        ("consent_events", "consent_events_away")
    };
    db.execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_replica_whose_follower_cannot_read_the_ledger_stops_answering_from_its_cache()
-> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .setting("consent.tail_interval_ms", 100)
        .start()
        .await?;
    let mut consent = mesh.consent();
    let subject = mesh
        .sign_up(&Person {
            region: Region::Eea,
            ..Person::new()
        })
        .await?;
    assert!(
        !allowed(&mut consent, &subject, "").await?,
        "cached: no consent"
    );

    // The follower can no longer read the ledger: other replicas' writes would not reach
    // this cache, so once its trust window (2 s here) passes, checks read the database,
    // and fail while it fails, rather than answer from the cache.
    ledger_reachable(&mesh, false).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let refused = loop {
        match allowed(&mut consent, &subject, "").await {
            Err(err) => break err,
            Ok(_) => {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "still answered from the cache 15 s after the ledger became unreadable"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let status = refused
        .downcast_ref::<tonic::Status>()
        .ok_or_else(|| anyhow::anyhow!("not a gRPC error: {refused}"))?;
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Internal),
        "{status:?}"
    );

    // Once it reads again, the replica answers (and caches) as before.
    ledger_reachable(&mesh, true).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while allowed(&mut consent, &subject, "").await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    consent.grant_consent(grant(&subject, PURPOSE)).await?;
    assert!(allowed(&mut consent, &subject, "").await?);
    Ok(())
}
