//! Bad input is refused with a field violation per bad field, and nothing reaches the
//! ledger ("Consent to be obtained": the proof must be exact, so a half-valid record is
//! never kept).

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{self as pb, Channel, MessageKind, Source},
    subject::v1 as subject_pb,
};
use pdm_runtime::{convert::timestamp, tonic_types::StatusExt};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows},
    fake::Person,
};
use tonic::{Request, Status, metadata::MetadataValue};

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

/// A card number as people type it: plain, grouped by spaces, by hyphens, and after
/// another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

fn grant(subject: &str) -> pb::GrantConsentRequest {
    pb::GrantConsentRequest {
        subject_id: subject.to_owned(),
        purpose: "marketing_email".to_owned(),
        source: Source::WebForm as i32,
        policy_version: "2024-06-28".to_owned(),
        text_hash: TEXT_HASH.to_owned(),
        actor: "web-signup".to_owned(),
        occurred_at: None,
    }
}

fn withdraw(subject: &str) -> pb::WithdrawConsentRequest {
    pb::WithdrawConsentRequest {
        subject_id: subject.to_owned(),
        purpose: "marketing_email".to_owned(),
        source: Source::WebForm as i32,
        actor: "settings-page".to_owned(),
    }
}

fn preference(subject: &str) -> pb::SetContactPreferenceRequest {
    pb::SetContactPreferenceRequest {
        subject_id: subject.to_owned(),
        channel: Channel::Email as i32,
        opted_out: true,
        source: Source::EmailLink as i32,
        actor: "unsubscribe-link".to_owned(),
    }
}

fn do_not_sell(subject: &str) -> pb::SetDoNotSellRequest {
    pb::SetDoNotSellRequest {
        subject_id: subject.to_owned(),
        do_not_sell: true,
        source: Source::WebForm as i32,
        actor: "do-not-sell-link".to_owned(),
    }
}

fn restriction(subject: &str) -> pb::SetRestrictionRequest {
    pb::SetRestrictionRequest {
        subject_id: subject.to_owned(),
        restricted: true,
        source: Source::PrivacyRequest as i32,
        actor: "privacy-team".to_owned(),
    }
}

fn objection(subject: &str) -> pb::RecordObjectionRequest {
    pb::RecordObjectionRequest {
        subject_id: subject.to_owned(),
        purpose: "product_research".to_owned(),
        withdraw: false,
        source: Source::PrivacyRequest as i32,
        actor: "privacy-team".to_owned(),
    }
}

/// A request that also carries a Global Privacy Control signal: a refused request records
/// nothing, not even the signal.
fn signalled<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("sec-gpc", MetadataValue::from_static("1"));
    request
}

fn refused<T: std::fmt::Debug>(answer: Result<T, Status>) -> Status {
    match answer {
        Ok(ok) => panic!("expected INVALID_ARGUMENT, got {ok:?}"),
        Err(status) => status,
    }
}

/// Asserts `answer` is INVALID_ARGUMENT with one violation: a card number in `field`.
fn assert_card_refused<T: std::fmt::Debug>(answer: Result<T, Status>, field: &str, card: &str) {
    let status = refused(answer);
    assert_eq!(field_violations(&status), [field], "{field} = {card:?}");
    let descriptions: Vec<String> = status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| v.description)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        descriptions,
        ["must not contain a payment card number"],
        "{field} = {card:?}"
    );
}

async fn ledger_is_empty(mesh: &Mesh) -> anyhow::Result<()> {
    let db = mesh.connect_db("consent").await?;
    assert_eq!(
        rows(&db, "consent_events").await,
        0,
        "a refused request reached the ledger"
    );
    Ok(())
}

#[tokio::test]
async fn grant_consent_names_every_bad_field_and_stores_nothing() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let future = chrono::Utc::now() + chrono::Duration::days(1);

    let cases: Vec<(pb::GrantConsentRequest, Vec<&str>)> = vec![
        (grant(""), vec!["subject_id"]),
        (grant("not-a-subject"), vec!["subject_id"]),
        (
            pb::GrantConsentRequest {
                purpose: "astrology".into(),
                ..grant(&subject)
            },
            vec!["purpose"],
        ),
        (
            pb::GrantConsentRequest {
                purpose: String::new(),
                ..grant(&subject)
            },
            vec!["purpose"],
        ),
        (
            pb::GrantConsentRequest {
                source: 99,
                ..grant(&subject)
            },
            vec!["source"],
        ),
        (
            pb::GrantConsentRequest {
                source: Source::Unspecified as i32,
                ..grant(&subject)
            },
            vec!["source"],
        ),
        (
            pb::GrantConsentRequest {
                policy_version: "v".repeat(33),
                ..grant(&subject)
            },
            vec!["policy_version"],
        ),
        (
            pb::GrantConsentRequest {
                policy_version: String::new(),
                ..grant(&subject)
            },
            vec!["policy_version"],
        ),
        (
            pb::GrantConsentRequest {
                text_hash: "xyz".into(),
                ..grant(&subject)
            },
            vec!["text_hash"],
        ),
        (
            pb::GrantConsentRequest {
                // 64 characters, not all hex.
                text_hash: format!("{}zz", &TEXT_HASH[..62]),
                ..grant(&subject)
            },
            vec!["text_hash"],
        ),
        (
            pb::GrantConsentRequest {
                actor: "a".repeat(129),
                ..grant(&subject)
            },
            vec!["actor"],
        ),
        (
            pb::GrantConsentRequest {
                actor: "   ".into(),
                ..grant(&subject)
            },
            vec!["actor"],
        ),
        (
            pb::GrantConsentRequest {
                actor: "web\nsignup".into(),
                ..grant(&subject)
            },
            vec!["actor"],
        ),
        (
            pb::GrantConsentRequest {
                occurred_at: Some(timestamp(future)),
                ..grant(&subject)
            },
            vec!["occurred_at"],
        ),
        (
            pb::GrantConsentRequest {
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -5,
                }),
                ..grant(&subject)
            },
            vec!["occurred_at"],
        ),
        (
            pb::GrantConsentRequest {
                subject_id: String::new(),
                purpose: "astrology".into(),
                source: 99,
                policy_version: "v".repeat(33),
                text_hash: "xyz".into(),
                actor: "a".repeat(129),
                occurred_at: Some(timestamp(future)),
            },
            vec![
                "subject_id",
                "purpose",
                "source",
                "policy_version",
                "text_hash",
                "actor",
                "occurred_at",
            ],
        ),
    ];
    for (request, fields) in cases {
        let err = refused(consent.grant_consent(signalled(request.clone())).await);
        assert_eq!(field_violations(&err), fields, "{request:?}");
    }
    ledger_is_empty(&mesh).await?;
    // The limits are inclusive: the same request at the limits is accepted.
    consent
        .grant_consent(pb::GrantConsentRequest {
            policy_version: "v".repeat(32),
            actor: "a".repeat(128),
            text_hash: TEXT_HASH.to_uppercase(),
            ..grant(&subject)
        })
        .await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn every_other_write_names_its_bad_fields_and_stores_nothing() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let s = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();
    let long_actor = "a".repeat(129);

    let err = refused(consent.withdraw_consent(signalled(withdraw(""))).await);
    assert_eq!(field_violations(&err), ["subject_id"]);
    let err = refused(
        consent
            .withdraw_consent(signalled(pb::WithdrawConsentRequest {
                subject_id: "not-a-subject".into(),
                purpose: "astrology".into(),
                source: 99,
                actor: long_actor.clone(),
            }))
            .await,
    );
    assert_eq!(
        field_violations(&err),
        ["subject_id", "purpose", "source", "actor"]
    );

    let err = refused(
        consent
            .set_contact_preference(signalled(pb::SetContactPreferenceRequest {
                channel: 99,
                ..preference(&s)
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["channel"]);
    let err = refused(
        consent
            .set_contact_preference(signalled(pb::SetContactPreferenceRequest {
                subject_id: String::new(),
                channel: Channel::Unspecified as i32,
                source: 99,
                actor: long_actor.clone(),
                opted_out: true,
            }))
            .await,
    );
    assert_eq!(
        field_violations(&err),
        ["subject_id", "channel", "source", "actor"]
    );

    let err = refused(
        consent
            .set_do_not_sell(signalled(pb::SetDoNotSellRequest {
                subject_id: String::new(),
                source: 99,
                actor: long_actor.clone(),
                ..do_not_sell(&s)
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id", "source", "actor"]);
    let err = refused(
        consent
            .set_do_not_sell(pb::SetDoNotSellRequest {
                actor: String::new(),
                ..do_not_sell(&s)
            })
            .await,
    );
    assert_eq!(field_violations(&err), ["actor"]);

    let err = refused(
        consent
            .set_restriction(signalled(pb::SetRestrictionRequest {
                subject_id: String::new(),
                source: 99,
                actor: long_actor.clone(),
                ..restriction(&s)
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id", "source", "actor"]);
    let err = refused(
        consent
            .set_restriction(signalled(pb::SetRestrictionRequest {
                source: Source::Unspecified as i32,
                ..restriction(&s)
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["source"]);

    let err = refused(
        consent
            .record_objection(signalled(pb::RecordObjectionRequest {
                subject_id: String::new(),
                purpose: "astrology".into(),
                source: 99,
                actor: long_actor.clone(),
                withdraw: false,
            }))
            .await,
    );
    assert_eq!(
        field_violations(&err),
        ["subject_id", "purpose", "source", "actor"]
    );
    let err = refused(
        consent
            .record_objection(signalled(pb::RecordObjectionRequest {
                purpose: String::new(),
                ..objection(&s)
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["purpose"]);

    ledger_is_empty(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    // The ledger is proof kept for years: a card number typed as who recorded a change,
    // or as the policy version shown, would be kept with it.
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let s = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    for card in CARDS {
        let grants = [
            (
                "policy_version",
                pb::GrantConsentRequest {
                    policy_version: card.into(),
                    ..grant(&s)
                },
            ),
            (
                "actor",
                pb::GrantConsentRequest {
                    actor: card.into(),
                    ..grant(&s)
                },
            ),
        ];
        for (field, request) in grants {
            assert_card_refused(consent.grant_consent(signalled(request)).await, field, card);
        }
        let answer = consent
            .withdraw_consent(signalled(pb::WithdrawConsentRequest {
                actor: card.into(),
                ..withdraw(&s)
            }))
            .await;
        assert_card_refused(answer, "actor", card);
        let answer = consent
            .set_contact_preference(signalled(pb::SetContactPreferenceRequest {
                actor: card.into(),
                ..preference(&s)
            }))
            .await;
        assert_card_refused(answer, "actor", card);
        let answer = consent
            .set_do_not_sell(signalled(pb::SetDoNotSellRequest {
                actor: card.into(),
                ..do_not_sell(&s)
            }))
            .await;
        assert_card_refused(answer, "actor", card);
        let answer = consent
            .set_restriction(signalled(pb::SetRestrictionRequest {
                actor: card.into(),
                ..restriction(&s)
            }))
            .await;
        assert_card_refused(answer, "actor", card);
        let answer = consent
            .record_objection(signalled(pb::RecordObjectionRequest {
                actor: card.into(),
                ..objection(&s)
            }))
            .await;
        assert_card_refused(answer, "actor", card);
    }
    ledger_is_empty(&mesh).await?;

    // The same requests without the card are recorded.
    consent.grant_consent(grant(&s)).await?;
    consent.withdraw_consent(withdraw(&s)).await?;
    consent.set_contact_preference(preference(&s)).await?;
    consent.set_do_not_sell(do_not_sell(&s)).await?;
    consent.record_objection(objection(&s)).await?;
    consent.set_restriction(restriction(&s)).await?;
    let db = mesh.connect_db("consent").await?;
    assert_eq!(rows(&db, "consent_events").await, 6);

    let mut secrets = person.secrets();
    secrets.extend(CARDS.iter().map(|c| ("card number", *c)));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn reads_name_their_bad_fields_and_store_nothing() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let s = mesh.sign_up(&person).await?;
    let mut consent = mesh.consent();

    let err = refused(
        consent
            .can_contact(signalled(pb::CanContactRequest {
                subject_id: String::new(),
                channel: 99,
                kind: 99,
                ..Default::default()
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id", "channel", "kind"]);
    let err = refused(
        consent
            .can_contact(signalled(pb::CanContactRequest {
                subject_id: s.clone(),
                channel: Channel::Email as i32,
                kind: MessageKind::Unspecified as i32,
                ..Default::default()
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["kind"]);

    let err = refused(
        consent
            .check_processing(signalled(pb::CheckProcessingRequest {
                subject_id: "nope".into(),
                purpose: String::new(),
                ..Default::default()
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id", "purpose"]);

    let err = refused(
        consent
            .get_consents(signalled(pb::GetConsentsRequest {
                subject_id: s.to_uppercase().replace('-', ""),
            }))
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id"]);

    let err = refused(
        consent
            .get_consent_history(pb::GetConsentHistoryRequest {
                subject_id: String::new(),
                after_sequence: -1,
                page_size: 1001,
            })
            .await,
    );
    assert_eq!(
        field_violations(&err),
        ["subject_id", "after_sequence", "page_size"]
    );

    ledger_is_empty(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn subject_data_requests_name_their_bad_fields_and_change_nothing() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let s = mesh.sign_up(&person).await?;
    let mut subject_data = mesh.subject_data("consent");

    let err = refused(
        subject_data
            .erase_subject(subject_pb::EraseSubjectRequest {
                request_id: String::new(),
                subject_id: "nope".into(),
            })
            .await,
    );
    assert_eq!(field_violations(&err), ["request_id", "subject_id"]);
    let err = refused(
        subject_data
            .erase_subject(subject_pb::EraseSubjectRequest {
                request_id: "r".repeat(129),
                subject_id: s.clone(),
            })
            .await,
    );
    assert_eq!(field_violations(&err), ["request_id"]);

    let err = refused(
        subject_data
            .restrict_subject(subject_pb::RestrictSubjectRequest {
                subject_id: String::new(),
                restricted: true,
                request_id: "dsr with spaces".into(),
            })
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id", "request_id"]);

    let err = refused(
        subject_data
            .purge_expired(subject_pb::PurgeExpiredRequest {
                run_id: String::new(),
                rules: vec![subject_pb::PurgeRule {
                    category: String::new(),
                    trigger: subject_pb::RetentionTrigger::AccountClosed as i32,
                    cutoff: None,
                }],
                holds: vec![subject_pb::LegalHold {
                    hold_id: String::new(),
                    subject_id: "nope".into(),
                    category: String::new(),
                }],
                dry_run: false,
            })
            .await,
    );
    assert_eq!(
        field_violations(&err),
        [
            "run_id",
            "rules[0].category",
            "rules[0].cutoff",
            "holds[0].hold_id",
            "holds[0].subject_id"
        ]
    );

    let err = refused(
        subject_data
            .export_subject(subject_pb::ExportSubjectRequest {
                subject_id: "nope".into(),
                request_id: String::new(),
            })
            .await,
    );
    assert_eq!(field_violations(&err), ["subject_id"]);

    ledger_is_empty(&mesh).await?;
    let db = mesh.connect_db("consent").await?;
    assert_eq!(rows(&db, "erasures").await, 0);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
