//! Least privilege per subject. Policy, "Data Security & Protection": "Restricted access"
//! to personal data, and service providers get "only the information they need". A
//! company client sees in consent only the subjects it is linked with in identity (it
//! created the account, the subject signed in through it, or it presented the subject's
//! session to LinkSubject). For any other subject every method answers exactly as for a
//! subject that does not exist, and nothing is stored.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{
        self as pb, Channel as ContactChannel, MessageKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
    identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient},
};
use pdm_testkit::{Mesh, TestMesh, assert::rows, fake::Person};
use pdm_tls::identity::Caller;
use tonic::{metadata::MetadataValue, transport::Channel};

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const TABLES: [&str; 3] = ["consent_events", "subjects", "erasures"];

fn consent_as(mesh: &Mesh, client: &str) -> anyhow::Result<ConsentServiceClient<Channel>> {
    Ok(ConsentServiceClient::new(mesh.channel_as(
        pdm_consent::NAME,
        &Caller::Client(client.to_owned()),
    )?))
}

async fn counts(mesh: &Mesh) -> anyhow::Result<Vec<u64>> {
    let db = mesh.connect_db(pdm_consent::NAME).await?;
    let mut n = Vec::new();
    for table in TABLES {
        n.push(rows(&db, table).await);
    }
    Ok(n)
}

/// What every method with a subject answers about `subject`, as text with the subject id
/// blanked out (so answers about two subjects can be compared). Calls carry a Global
/// Privacy Control signal, which consent records for subjects it may act on.
async fn answers(consent: &mut ConsentServiceClient<Channel>, subject: &str) -> Vec<String> {
    fn gpc<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("sec-gpc", MetadataValue::from_static("1"));
        request
    }
    fn show<T: std::fmt::Debug>(
        method: &str,
        subject: &str,
        r: Result<tonic::Response<T>, tonic::Status>,
    ) -> String {
        let text = match r {
            Ok(response) => format!("{method}: {:?}", response.into_inner()),
            Err(status) => format!("{method}: {:?} {}", status.code(), status.message()),
        };
        text.replace(subject, "<subject>")
    }
    let s = || subject.to_owned();
    vec![
        show(
            "GrantConsent",
            subject,
            consent
                .grant_consent(gpc(pb::GrantConsentRequest {
                    subject_id: s(),
                    purpose: "product_analytics".into(),
                    source: Source::Api as i32,
                    policy_version: "2024-06-28".into(),
                    text_hash: TEXT_HASH.into(),
                    actor: "other-service".into(),
                    occurred_at: None,
                }))
                .await,
        ),
        show(
            "WithdrawConsent",
            subject,
            consent
                .withdraw_consent(gpc(pb::WithdrawConsentRequest {
                    subject_id: s(),
                    purpose: "product_analytics".into(),
                    source: Source::Api as i32,
                    actor: "other-service".into(),
                }))
                .await,
        ),
        show(
            "GetConsents",
            subject,
            consent
                .get_consents(gpc(pb::GetConsentsRequest { subject_id: s() }))
                .await,
        ),
        show(
            "GetConsentHistory",
            subject,
            consent
                .get_consent_history(pb::GetConsentHistoryRequest {
                    subject_id: s(),
                    after_sequence: 0,
                    page_size: 0,
                })
                .await,
        ),
        show(
            "CheckProcessing",
            subject,
            consent
                .check_processing(gpc(pb::CheckProcessingRequest {
                    subject_id: s(),
                    purpose: "product_analytics".into(),
                    ..Default::default()
                }))
                .await,
        ),
        show(
            "BatchCheckProcessing",
            subject,
            consent
                .batch_check_processing(pb::BatchCheckProcessingRequest {
                    items: ["product_analytics", "marketing_email", "product_analytics"]
                        .into_iter()
                        .map(|p| pb::CheckItem {
                            subject_id: s(),
                            purpose: p.into(),
                        })
                        .collect(),
                    ..Default::default()
                })
                .await,
        ),
        show(
            "CanContact",
            subject,
            consent
                .can_contact(gpc(pb::CanContactRequest {
                    subject_id: s(),
                    channel: ContactChannel::Email as i32,
                    kind: MessageKind::Promotional as i32,
                    ..Default::default()
                }))
                .await,
        ),
        show(
            "SetContactPreference",
            subject,
            consent
                .set_contact_preference(gpc(pb::SetContactPreferenceRequest {
                    subject_id: s(),
                    channel: ContactChannel::Email as i32,
                    opted_out: true,
                    source: Source::Api as i32,
                    actor: "other-service".into(),
                }))
                .await,
        ),
        show(
            "SetDoNotSell",
            subject,
            consent
                .set_do_not_sell(gpc(pb::SetDoNotSellRequest {
                    subject_id: s(),
                    do_not_sell: true,
                    source: Source::Api as i32,
                    actor: "other-service".into(),
                }))
                .await,
        ),
        show(
            "SetRestriction",
            subject,
            consent
                .set_restriction(gpc(pb::SetRestrictionRequest {
                    subject_id: s(),
                    restricted: true,
                    source: Source::Api as i32,
                    actor: "other-service".into(),
                }))
                .await,
        ),
        show(
            "RecordObjection",
            subject,
            consent
                .record_objection(gpc(pb::RecordObjectionRequest {
                    subject_id: s(),
                    purpose: "marketing_email".into(),
                    withdraw: false,
                    source: Source::Api as i32,
                    actor: "other-service".into(),
                }))
                .await,
        ),
    ]
}

/// `person` signs in through company client `shop`, which links the shop with them.
async fn sign_in_through_the_shop(mesh: &Mesh, person: &Person) -> anyhow::Result<()> {
    IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &Caller::Client("shop".into()))?,
    )
    .authenticate(AuthenticateRequest {
        email: person.email.clone(),
        password: person.password.clone(),
    })
    .await?;
    Ok(())
}

fn eea_person() -> Person {
    Person {
        region: Region::Eea,
        ..Person::new()
    }
}

#[tokio::test]
async fn restricted_access_another_client_cannot_tell_a_subject_from_one_that_does_not_exist()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    // The test kit's client creates the account: it is linked, and has a history.
    let subject = mesh.sign_up(&eea_person()).await?;
    mesh.consent()
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: TEXT_HASH.into(),
            actor: "web-signup".into(),
            occurred_at: None,
        })
        .await?;
    let owner_view = mesh
        .consent()
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    let before = counts(&mesh).await?;

    let mut stranger = consent_as(&mesh, "stranger")?;
    let nobody = uuid::Uuid::now_v7().to_string();
    let for_nobody = answers(&mut stranger, &nobody).await;
    let for_subject = answers(&mut stranger, &subject).await;
    assert_eq!(for_subject, for_nobody);
    // The unknown-subject answers themselves: nothing about the subject leaks.
    assert!(for_subject[0].starts_with("GrantConsent: NotFound"));
    assert!(
        for_subject[4].contains("reason: UnknownSubject"),
        "{}",
        for_subject[4]
    );

    // Nothing was stored, and the owner's view of the subject is unchanged.
    assert_eq!(counts(&mesh).await?, before);
    let after = mesh
        .consent()
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(after, owner_view);
    Ok(())
}

#[tokio::test]
async fn restricted_access_a_client_the_subject_signed_in_through_gets_the_normal_answers()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = eea_person();
    let subject = mesh.sign_up(&person).await?;
    let other = mesh.sign_up(&eea_person()).await?;
    // The person signs in through the shop: the shop is linked with them (not with `other`).
    sign_in_through_the_shop(&mesh, &person).await?;
    let mut shop = consent_as(&mesh, "shop")?;

    let d = shop
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(d.reason, Reason::NoConsent as i32);
    shop.grant_consent(pb::GrantConsentRequest {
        subject_id: subject.clone(),
        purpose: "product_analytics".into(),
        source: Source::WebForm as i32,
        policy_version: "2024-06-28".into(),
        text_hash: TEXT_HASH.into(),
        actor: "shop-banner".into(),
        occurred_at: None,
    })
    .await?;
    let history = shop
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.clone(),
            after_sequence: 0,
            page_size: 0,
        })
        .await?
        .into_inner();
    assert_eq!(history.entries.len(), 1);

    // A batch is decided per subject: the linked one normally, the other as unknown.
    let decisions = shop
        .batch_check_processing(pb::BatchCheckProcessingRequest {
            items: [&subject, &other, &subject]
                .into_iter()
                .map(|s| pb::CheckItem {
                    subject_id: s.clone(),
                    purpose: "product_analytics".into(),
                })
                .collect(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decisions;
    let reasons: Vec<i32> = decisions.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        vec![
            Reason::ConsentGiven as i32,
            Reason::UnknownSubject as i32,
            Reason::ConsentGiven as i32
        ]
    );
    assert!(decisions[0].allowed && !decisions[1].allowed);
    Ok(())
}

/// Entries of `stream` until one at or past `position`.
async fn entries_until(
    stream: &mut tonic::Streaming<pb::WatchConsentChangesResponse>,
    position: i64,
) -> anyhow::Result<Vec<pb::LedgerEntry>> {
    let mut entries = Vec::new();
    while entries
        .last()
        .is_none_or(|e: &pb::LedgerEntry| e.sequence < position)
    {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await??
            .ok_or_else(|| anyhow::anyhow!("the watch stream ended"))?;
        entries.push(message.entry.expect("entry"));
    }
    Ok(entries)
}

#[tokio::test]
async fn restricted_access_a_client_following_the_ledger_sees_its_subjects_the_position_of_others_and_every_erasure()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = eea_person();
    let subject = mesh.sign_up(&person).await?;
    let other = mesh.sign_up(&eea_person()).await?;
    sign_in_through_the_shop(&mesh, &person).await?;
    for s in [&subject, &other, &subject] {
        mesh.consent()
            .grant_consent(pb::GrantConsentRequest {
                subject_id: s.clone(),
                purpose: "product_analytics".into(),
                source: Source::WebForm as i32,
                policy_version: "2024-06-28".into(),
                text_hash: TEXT_HASH.into(),
                actor: "web-signup".into(),
                occurred_at: None,
            })
            .await?;
    }
    let mut shop = consent_as(&mesh, "shop")?;
    let position = shop
        .get_ledger_position(pb::GetLedgerPositionRequest {})
        .await?
        .into_inner()
        .sequence;
    let mut admin = ConsentServiceClient::new(mesh.channel_as(pdm_consent::NAME, &Caller::Admin)?);
    let whole = entries_until(
        &mut admin
            .watch_consent_changes(pb::WatchConsentChangesRequest { after_sequence: 0 })
            .await?
            .into_inner(),
        position,
    )
    .await?;
    let mut stream = shop
        .watch_consent_changes(pb::WatchConsentChangesRequest { after_sequence: 0 })
        .await?
        .into_inner();
    let seen = entries_until(&mut stream, position).await?;

    // The same positions, so the shop's cursor and "caught up" work as the mesh's do.
    let sequences =
        |entries: &[pb::LedgerEntry]| -> Vec<i64> { entries.iter().map(|e| e.sequence).collect() };
    assert_eq!(sequences(&seen), sequences(&whole));
    for (shown, entry) in seen.iter().zip(&whole) {
        if entry.subject_id == subject {
            assert_eq!(shown, entry, "the linked subject's entries arrive whole");
        } else {
            assert_eq!(
                shown,
                &pb::LedgerEntry {
                    sequence: entry.sequence,
                    ..Default::default()
                },
                "anyone else's entry is its position alone"
            );
        }
    }
    assert_eq!(
        seen.iter().filter(|e| e.subject_id == subject).count(),
        2,
        "both grants of the linked subject"
    );
    assert!(!format!("{seen:?}").contains(&other));

    // The other subject is erased: the shop is told, under the pseudonym alone.
    mesh.subject_data(pdm_consent::NAME)
        .erase_subject(pdm_proto::subject::v1::EraseSubjectRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            subject_id: other.clone(),
        })
        .await?;
    let erasure = entries_until(&mut stream, position + 1).await?;
    let erasure = erasure.last().expect("an entry");
    assert_eq!(erasure.kind, pb::LedgerEntryKind::Erased as i32);
    assert!(erasure.subject_id.starts_with("erased:"), "{erasure:?}");
    assert!(erasure.actor.is_empty() && erasure.purpose.is_empty());
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
