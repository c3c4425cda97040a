//! The SubjectData contract for the transfers service: access lists the subject's
//! transfers and their recipients ("GDPR Data Protection Rights": the right of access;
//! Art. 15(1)(c) and 15(2) GDPR); erasure keeps the record of each transfer under a
//! pseudonym ("The right to erasure", limited by Art. 17(3)(b) and the accountability of
//! Art. 5(2) and 30 GDPR) and says so in the receipt; retention purges old entries, except
//! those under a legal hold.

mod support;

use chrono::Duration;
use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{
        self as pb, LegalHold, PurgeExpiredRequest, PurgeResult, PurgeRule, RetentionTrigger,
        subject_data_service_client::SubjectDataServiceClient,
    },
    transfers::v1::{self as transfers_pb, Regime},
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{
    Mesh,
    assert::{field_violations, rows, rows_where},
    start_time,
};
use prost_types::value::Kind;
use support::{
    authorize, log, mesh, person, pseudonymised_rows, recipient, register, subject, transfer,
};
use tonic::transport::Channel;

type SubjectData = SubjectDataServiceClient<Channel>;

const LOG: &str = "transfers.log";

async fn export(
    subject_data: &mut SubjectData,
    subject_id: &str,
) -> anyhow::Result<Vec<pb::SubjectRecord>> {
    let mut stream = subject_data
        .export_subject(pb::ExportSubjectRequest {
            subject_id: subject_id.to_owned(),
            request_id: "dsr-access".to_owned(),
        })
        .await?
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        records.push(message.record.expect("record"));
    }
    Ok(records)
}

async fn erase(
    subject_data: &mut SubjectData,
    request_id: &str,
    subject_id: &str,
) -> anyhow::Result<pb::ErasureReceipt> {
    Ok(subject_data
        .erase_subject(pb::EraseSubjectRequest {
            request_id: request_id.to_owned(),
            subject_id: subject_id.to_owned(),
        })
        .await?
        .into_inner()
        .receipt
        .expect("receipt"))
}

/// Sends `subject_id`'s profile to each of `to` under the EU regime.
async fn send(
    mesh: &Mesh,
    subject_id: &str,
    to: &[&transfers_pb::Recipient],
) -> anyhow::Result<()> {
    let mut client = mesh.transfers();
    for r in to {
        authorize(
            &mut client,
            transfers_pb::AuthorizeTransferRequest {
                subject_id: subject_id.to_owned(),
                ..transfer(Regime::Eu, &r.recipient_id)
            },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_export_lists_the_subjects_transfers_and_their_recipients() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let japan = register(&mut client, recipient("support-jp", "JP")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);
    send(&mesh, &ada, &[&germany, &japan, &india]).await?;
    send(&mesh, &bob, &[&germany]).await?;
    let mut subject_data = mesh.subject_data("transfers");

    let records = export(&mut subject_data, &ada).await?;
    let entries: Vec<_> = records.iter().filter(|r| r.category == LOG).collect();
    assert_eq!(
        entries.len(),
        3,
        "one record per logged transfer, denied too"
    );
    for e in &entries {
        assert_eq!(e.service, "transfers");
        assert_eq!(e.purposes, ["service_provision"]);
        assert_eq!(e.legal_basis, LegalBasis::LegalObligation as i32);
        assert!(e.retention.is_some());
        assert_eq!(e.created_at, Some(timestamp(clock.now())));
    }
    let mut disclosed: Vec<_> = entries.iter().flat_map(|e| e.recipients.clone()).collect();
    disclosed.sort();
    assert_eq!(
        disclosed,
        [germany.name.clone(), japan.name.clone()],
        "recipients of the allowed transfers only"
    );
    let denied = entries
        .iter()
        .find(|e| e.recipients.is_empty())
        .expect("the denied transfer");
    let data = denied.data.clone().expect("data");
    let field = |name: &str| {
        data.fields
            .get(name)
            .and_then(|v| v.kind.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(field("country"), Kind::StringValue("IN".into()));
    assert_eq!(field("allowed"), Kind::BoolValue(false));
    assert_eq!(
        field("outcome"),
        Kind::StringValue("OUTCOME_DENIED_NO_MECHANISM".into())
    );

    let summary: Vec<_> = records
        .iter()
        .filter(|r| r.category == "transfers.recipients")
        .collect();
    assert_eq!(summary.len(), 1);
    let mut names = summary[0].recipients.clone();
    names.sort();
    assert_eq!(names, [germany.name.clone(), japan.name.clone()]);
    assert_eq!(records.len(), 4, "nothing else, and nothing of bob's");

    assert!(
        export(&mut subject_data, &subject()).await?.is_empty(),
        "an unknown subject yields an empty stream"
    );
    let err = subject_data
        .export_subject(pb::ExportSubjectRequest {
            subject_id: "ada".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("bad subject");
    assert_eq!(field_violations(&err), ["subject_id"]);
    Ok(())
}

/// An erasure is stored with its receipt or not at all: apart, a stop between the two left
/// the retry to find nothing to pseudonymise and a receipt counting nothing. The table
/// refusing the receipt stands in for the stop.
#[tokio::test]
async fn an_erasure_is_stored_with_its_receipt_or_not_at_all() -> anyhow::Result<()> {
    use pdm_testkit::faults::{allow_inserts, refuse_inserts};
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let ada = person(&mesh).await?;
    send(&mesh, &ada, &[&germany, &germany]).await?;
    let db = mesh.connect_db("transfers").await?;
    let mut subject_data = mesh.subject_data("transfers");

    refuse_inserts(&db, "erasures").await?;
    assert!(erase(&mut subject_data, "dsr-stop", &ada).await.is_err());
    assert_eq!(
        rows_where(&db, "transfer_log", "subject_id", &ada).await,
        2,
        "nothing is pseudonymised without its receipt"
    );
    assert_eq!(pseudonymised_rows(&db).await?, 0);
    allow_inserts(&db, "erasures").await?;

    let receipt = erase(&mut subject_data, "dsr-stop", &ada).await?;
    assert_eq!(receipt.erased.len(), 1, "the receipt says what was done");
    assert_eq!(receipt.erased[0].count, 2);
    assert_eq!(receipt.retained[0].count, 2);
    assert_eq!(rows_where(&db, "transfer_log", "subject_id", &ada).await, 0);
    assert_eq!(erase(&mut subject_data, "dsr-stop", &ada).await?, receipt);
    Ok(())
}

#[tokio::test]
async fn erasure_pseudonymises_the_log_and_the_receipt_says_it_is_kept() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);
    send(&mesh, &ada, &[&germany, &india, &germany]).await?;
    send(&mesh, &bob, &[&germany]).await?;
    let db = mesh.connect_db("transfers").await?;
    assert_eq!(rows(&db, "transfer_log").await, 4);
    let mut subject_data = mesh.subject_data("transfers");

    clock.advance(Duration::hours(1));
    let erased_at = clock.now();
    let receipt = erase(&mut subject_data, "dsr-erase-1", &ada).await?;
    assert_eq!(receipt.request_id, "dsr-erase-1");
    assert_eq!(receipt.subject_id, ada);
    assert_eq!(receipt.service, "transfers");
    assert_eq!(receipt.completed_at, Some(timestamp(erased_at)));
    assert!(!receipt.key_destroyed);
    assert_eq!(receipt.erased.len(), 1);
    assert_eq!(receipt.erased[0].count, 3);
    assert_eq!(receipt.retained.len(), 1);
    let kept = &receipt.retained[0];
    assert_eq!(kept.category, LOG);
    assert_eq!(kept.legal_basis, LegalBasis::LegalObligation as i32);
    assert_eq!(kept.count, 3);
    assert!(!kept.reason.is_empty());

    // The record of each transfer stays; the subject id does not.
    assert_eq!(rows_where(&db, "transfer_log", "subject_id", &ada).await, 0);
    assert_eq!(rows(&db, "transfer_log").await, 4);
    assert_eq!(pseudonymised_rows(&db).await?, 3);
    assert_eq!(rows_where(&db, "transfer_log", "subject_id", &bob).await, 1);
    let pseudonymised = log(&mut client, Default::default())
        .await?
        .into_iter()
        .filter(|e| e.subject_id.starts_with(pdm_transfers::ERASED_PREFIX))
        .collect::<Vec<_>>();
    assert_eq!(pseudonymised.len(), 3);
    assert!(
        pseudonymised
            .iter()
            .all(|e| e.subject_id == pseudonymised[0].subject_id)
    );
    assert!(export(&mut subject_data, &ada).await?.is_empty());
    assert!(
        client
            .list_recipients(transfers_pb::ListRecipientsRequest {
                subject_id: ada.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .recipients
            .is_empty()
    );

    // The same request answers with the same receipt, later too.
    clock.advance(Duration::days(2));
    assert_eq!(
        erase(&mut subject_data, "dsr-erase-1", &ada).await?,
        receipt
    );
    assert_eq!(pseudonymised_rows(&db).await?, 3);

    // A request id belongs to one subject.
    let err = subject_data
        .erase_subject(pb::EraseSubjectRequest {
            request_id: "dsr-erase-1".into(),
            subject_id: bob.clone(),
        })
        .await
        .expect_err("reused request id");
    assert_eq!(field_violations(&err), ["request_id"]);
    assert_eq!(rows_where(&db, "transfer_log", "subject_id", &bob).await, 1);

    let err = subject_data
        .erase_subject(pb::EraseSubjectRequest {
            request_id: String::new(),
            subject_id: "bob".into(),
        })
        .await
        .expect_err("bad request");
    assert_eq!(field_violations(&err), ["request_id", "subject_id"]);

    // A subject with nothing logged is erased with an empty receipt.
    let nobody = erase(&mut subject_data, "dsr-erase-2", &subject()).await?;
    assert!(nobody.erased.is_empty() && nobody.retained.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_subject_with_logged_transfers_is_known_to_restriction() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    // Only a denied transfer: nothing was disclosed, but its record is held (and exported).
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);
    send(&mesh, &ada, &[&india]).await?;
    send(&mesh, &bob, &[&germany]).await?;
    let mut subject_data = mesh.subject_data("transfers");
    let restrict = async |subject_data: &mut SubjectData, subject_id: &str| {
        anyhow::Ok(
            subject_data
                .restrict_subject(pb::RestrictSubjectRequest {
                    subject_id: subject_id.to_owned(),
                    restricted: true,
                    request_id: "dsr-restrict".into(),
                })
                .await?
                .into_inner(),
        )
    };

    assert_eq!(export(&mut subject_data, &ada).await?.len(), 1);
    // Transfers are authorised per call; the consent service's decisions carry the
    // restriction, so nothing is marked here.
    let answer = restrict(&mut subject_data, &ada).await?;
    assert!(!answer.restricted);
    assert!(answer.subject_known, "its transfer record is held");
    assert!(restrict(&mut subject_data, &bob).await?.subject_known);
    assert!(!restrict(&mut subject_data, &subject()).await?.subject_known);

    erase(&mut subject_data, "dsr-erase-ada", &ada).await?;
    assert!(
        !restrict(&mut subject_data, &ada).await?.subject_known,
        "after erasure only a pseudonym is held"
    );
    Ok(())
}

fn rule(cutoff: chrono::DateTime<chrono::Utc>) -> PurgeRule {
    PurgeRule {
        category: LOG.to_owned(),
        trigger: RetentionTrigger::EventTime as i32,
        cutoff: Some(timestamp(cutoff)),
    }
}

async fn purge(
    subject_data: &mut SubjectData,
    request: PurgeExpiredRequest,
) -> anyhow::Result<Vec<PurgeResult>> {
    Ok(subject_data
        .purge_expired(request)
        .await?
        .into_inner()
        .results)
}

#[tokio::test]
async fn purging_removes_old_entries_except_those_on_hold_and_a_dry_run_removes_nothing()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);
    // Old: two of ada's, one of bob's, one without a subject.
    send(&mesh, &ada, &[&germany, &germany]).await?;
    send(&mesh, &bob, &[&germany]).await?;
    authorize(&mut client, transfer(Regime::Eu, &germany.recipient_id)).await?;
    let cutoff = clock.now() + Duration::days(200);
    clock.advance(Duration::days(400));
    // Recent: one each.
    send(&mesh, &ada, &[&germany]).await?;
    send(&mesh, &bob, &[&germany]).await?;
    let db = mesh.connect_db("transfers").await?;
    assert_eq!(rows(&db, "transfer_log").await, 6);
    let mut subject_data = mesh.subject_data("transfers");
    // An erased subject's pseudonymised entries stay under that subject's hold.
    erase(&mut subject_data, "dsr-erase-ada", &ada).await?;
    let hold = LegalHold {
        hold_id: "hold-litigation-7".into(),
        subject_id: ada.clone(),
        category: String::new(),
    };

    let rules_elsewhere = purge(
        &mut subject_data,
        PurgeExpiredRequest {
            run_id: "run-0".into(),
            rules: vec![PurgeRule {
                category: "identity.profile".into(),
                ..rule(cutoff)
            }],
            ..Default::default()
        },
    )
    .await?;
    assert!(rules_elsewhere.is_empty(), "no rule for the transfer log");

    let dry = purge(
        &mut subject_data,
        PurgeExpiredRequest {
            run_id: "run-1".into(),
            rules: vec![rule(cutoff)],
            holds: vec![hold.clone()],
            dry_run: true,
        },
    )
    .await?;
    assert_eq!(
        dry,
        [PurgeResult {
            category: LOG.into(),
            purged: 2,
            held: 2,
            hold_ids: vec!["hold-litigation-7".into()],
        }]
    );
    assert_eq!(
        rows(&db, "transfer_log").await,
        6,
        "a dry run deletes nothing"
    );

    let held = purge(
        &mut subject_data,
        PurgeExpiredRequest {
            run_id: "run-2".into(),
            rules: vec![rule(cutoff)],
            holds: vec![hold.clone()],
            dry_run: false,
        },
    )
    .await?;
    assert_eq!(held, dry);
    assert_eq!(rows(&db, "transfer_log").await, 4);
    assert_eq!(rows_where(&db, "transfer_log", "subject_id", &bob).await, 1);
    assert_eq!(pseudonymised_rows(&db).await?, 3);

    // A hold on every subject keeps everything.
    let blanket = purge(
        &mut subject_data,
        PurgeExpiredRequest {
            run_id: "run-3".into(),
            rules: vec![rule(cutoff)],
            holds: vec![LegalHold {
                hold_id: "hold-regulator".into(),
                subject_id: String::new(),
                category: LOG.into(),
            }],
            dry_run: false,
        },
    )
    .await?;
    assert_eq!(blanket[0].purged, 0);
    assert_eq!(blanket[0].held, 2);
    assert_eq!(blanket[0].hold_ids, ["hold-regulator"]);
    assert_eq!(rows(&db, "transfer_log").await, 4);

    // Once the hold is released, the old entries go; the recent ones stay.
    let released = purge(
        &mut subject_data,
        PurgeExpiredRequest {
            run_id: "run-4".into(),
            rules: vec![rule(cutoff)],
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(released[0].purged, 2);
    assert_eq!(released[0].held, 0);
    assert!(released[0].hold_ids.is_empty());
    assert_eq!(rows(&db, "transfer_log").await, 2);
    assert_eq!(pseudonymised_rows(&db).await?, 1);

    let err = subject_data
        .purge_expired(PurgeExpiredRequest {
            run_id: String::new(),
            rules: vec![PurgeRule {
                cutoff: None,
                ..rule(cutoff)
            }],
            holds: vec![LegalHold {
                hold_id: String::new(),
                subject_id: "ada".into(),
                category: String::new(),
            }],
            dry_run: false,
        })
        .await
        .expect_err("bad purge");
    assert_eq!(
        field_violations(&err),
        [
            "run_id",
            "rules[0].cutoff",
            "holds[0].hold_id",
            "holds[0].subject_id"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn disclosures_required_by_law_name_their_order_and_a_gagging_order_keeps_them_from_the_access_answer()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let mut subject_data = SubjectDataServiceClient::new(mesh.channel("transfers"));
    let ada = person(&mesh).await?;
    let police = register(
        &mut client,
        transfers_pb::Recipient {
            role: transfers_pb::RecipientRole::PublicAuthority as i32,
            purposes: vec!["legal_compliance".into()],
            ..recipient("met-police", "GB")
        },
    )
    .await?;
    let hosting = register(&mut client, recipient("hosting-gb", "GB")).await?;
    let to_police =
        |order: Option<transfers_pb::LegalOrder>| transfers_pb::AuthorizeTransferRequest {
            subject_id: ada.clone(),
            purpose: "legal_compliance".into(),
            legal_order: order,
            ..transfer(Regime::Uk, &police.recipient_id)
        };
    let order = || transfers_pb::LegalOrder {
        legal_basis: "Investigatory Powers Act 2016, s. 61".into(),
        order_reference: "IPA-2026-0042".into(),
        issued_by: "Westminster Magistrates' Court".into(),
        secret_until: Some(timestamp(clock.now() + Duration::days(180))),
    };

    // "if required to do so by law": an authority receives data only under a named order.
    let err = client
        .authorize_transfer(to_police(None))
        .await
        .expect_err("no order");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["legal_order.legal_basis", "legal_order.order_reference"]
    );
    let err = client
        .authorize_transfer(to_police(Some(transfers_pb::LegalOrder {
            secret_until: Some(timestamp(clock.now() - Duration::days(1))),
            order_reference: String::new(),
            ..order()
        })))
        .await
        .expect_err("a past secrecy date, no reference");
    let mut fields = field_violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["legal_order.order_reference", "legal_order.secret_until"]
    );
    let err = client
        .authorize_transfer(transfers_pb::AuthorizeTransferRequest {
            subject_id: ada.clone(),
            legal_order: Some(order()),
            ..transfer(Regime::Uk, &hosting.recipient_id)
        })
        .await
        .expect_err("an order for a processor");
    assert_eq!(field_violations(&err), ["legal_order"]);
    assert!(
        log(&mut client, Default::default()).await?.is_empty(),
        "nothing logged"
    );

    let decision = authorize(&mut client, to_police(Some(order()))).await?;
    assert!(decision.allowed, "{decision:?}");
    let logged = log(&mut client, Default::default()).await?;
    assert_eq!(logged.len(), 1);
    assert_eq!(
        logged[0].legal_order,
        Some(order()),
        "the privacy team sees the order"
    );

    // The gagging order keeps the disclosure out of the subject's access answer...
    let told = |records: &[pb::SubjectRecord]| {
        records
            .iter()
            .any(|r| r.recipients.iter().any(|n| n == &police.name))
    };
    assert!(!told(&export(&mut subject_data, &ada).await?));
    let recipients = client
        .list_recipients(transfers_pb::ListRecipientsRequest {
            subject_id: ada.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .recipients;
    assert!(recipients.is_empty(), "{recipients:?}");

    // ... until it lapses.
    clock.advance(Duration::days(180));
    assert!(told(&export(&mut subject_data, &ada).await?));
    Ok(())
}
