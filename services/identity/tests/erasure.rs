//! Account deletion and erasure ("If you ever decide to delete your account": step 4, "You
//! may be asked to enter your password again or provide a reason"; step 5, "your account and
//! all associated data will be permanently deleted"; "GDPR Data Protection Rights: the right
//! to erasure"; "How we store and secure information we collect": billing kept "for eight
//! years after that" under a legal obligation).

use std::{collections::BTreeMap, sync::Arc};

use pdm_identity::Identity;
use pdm_proto::{
    common::v1::LegalBasis,
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1::{self as subject_pb, ErasureReceipt},
};
use pdm_runtime::{ManualClock, convert::from_timestamp};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows, rows_where},
    fake::{self, Person},
    start_time,
};
use sea_orm::DatabaseConnection;
use tonic::{Code, transport::Channel};

/// Every table that holds rows keyed by the subject id.
const SUBJECT_TABLES: [&str; 7] = [
    "accounts",
    "profile_photos",
    "sessions",
    "support_tickets",
    "ticket_attachments",
    "billing_contacts",
    "subject_keys",
];

async fn mesh_with_clock(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await
}

/// Rows naming `subject`, table by table, read with plain SQL (the key from the key
/// store, the rest from the data database).
async fn rows_naming(
    db: &DatabaseConnection,
    keys: &DatabaseConnection,
    subject: &str,
) -> BTreeMap<&'static str, u64> {
    let mut found = BTreeMap::new();
    for table in SUBJECT_TABLES {
        let conn = if table == "subject_keys" { keys } else { db };
        let n = rows_where(conn, table, "subject_id", subject).await;
        if n > 0 {
            found.insert(table, n);
        }
    }
    found
}

/// What a full account leaves in each table: one row everywhere, two attachments.
fn full_account_rows(with_billing: bool) -> BTreeMap<&'static str, u64> {
    SUBJECT_TABLES
        .iter()
        .filter(|t| with_billing || **t != "billing_contacts")
        .map(|t| (*t, if *t == "ticket_attachments" { 2 } else { 1 }))
        .collect()
}

/// An account with a photo, a session, a ticket with two attachments and, optionally, a
/// billing contact. Returns the subject id and the free text used.
async fn full_account(
    identity: &mut IdentityServiceClient<Channel>,
    person: &Person,
    with_billing: bool,
) -> anyhow::Result<(String, Vec<String>)> {
    let subject = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account")
        .subject_id;
    identity
        .set_profile_photo(pb::SetProfilePhotoRequest {
            subject_id: subject.clone(),
            photo: fake::png(),
        })
        .await?;
    let token = identity
        .authenticate(pb::AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?
        .into_inner()
        .session_token;
    let summary = fake::phrase("Invoice missing");
    let log = fake::phrase("trace id");
    identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            subject_id: subject.clone(),
            contact: person.phone.clone(),
            summary: summary.clone(),
            description: "Where is my November invoice?".into(),
            attachments: vec![
                pb::TicketAttachment {
                    file_name: "screen.png".into(),
                    content: fake::png(),
                    ..Default::default()
                },
                pb::TicketAttachment {
                    file_name: "trace.txt".into(),
                    content: log.clone().into_bytes(),
                    ..Default::default()
                },
            ],
            special_categories: Vec::new(),
        })
        .await?;
    let mut text = vec![token, summary, log];
    if with_billing {
        let name = fake::phrase("Billing Office");
        identity
            .set_billing_contact(pb::SetBillingContactRequest {
                subject_id: subject.clone(),
                billing_contact: Some(pb::BillingContact {
                    name: name.clone(),
                    email: "billing@example.com".into(),
                    phone: String::new(),
                    payment_processor_ref: "cus_erasure".into(),
                }),
            })
            .await?;
        text.push(name);
    }
    Ok((subject, text))
}

fn delete(subject_id: &str, password: &str, request_id: &str) -> pb::DeleteAccountRequest {
    pb::DeleteAccountRequest {
        subject_id: subject_id.to_owned(),
        password: password.to_owned(),
        reason: pb::DeletionReason::NoLongerNeeded as i32,
        request_id: request_id.to_owned(),
    }
}

fn erase(request_id: &str, subject_id: &str) -> subject_pb::EraseSubjectRequest {
    subject_pb::EraseSubjectRequest {
        request_id: request_id.to_owned(),
        subject_id: subject_id.to_owned(),
    }
}

fn erased(receipt: &ErasureReceipt) -> BTreeMap<&str, u64> {
    receipt
        .erased
        .iter()
        .map(|e| (e.category.as_str(), e.count))
        .collect()
}

async fn export_len(mesh: &Mesh, subject_id: &str) -> anyhow::Result<usize> {
    let mut stream = mesh
        .subject_data("identity")
        .export_subject(subject_pb::ExportSubjectRequest {
            subject_id: subject_id.to_owned(),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    let mut n = 0;
    while stream.message().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn secrets<'a>(person: &'a Person, text: &'a [String]) -> Vec<(&'static str, &'a str)> {
    let mut secrets = person.secrets();
    secrets.extend(text.iter().map(|t| ("free text or token", t.as_str())));
    secrets
}

#[tokio::test]
async fn deleting_needs_the_right_password_and_a_reason_and_keeps_everything_otherwise()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, text) = full_account(&mut identity, &person, true).await?;
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(
        rows_naming(&db, &keys, &subject).await,
        full_account_rows(true)
    );

    let err = identity
        .delete_account(delete(&subject, "not my password at all", ""))
        .await
        .expect_err("wrong password");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .delete_account(delete(
            &uuid::Uuid::now_v7().to_string(),
            &person.password,
            "",
        ))
        .await
        .expect_err("unknown subject");
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "an unknown subject answers like a wrong password"
    );
    let err = identity
        .delete_account(pb::DeleteAccountRequest {
            reason: pb::DeletionReason::Unspecified as i32,
            ..delete(&subject, &person.password, "")
        })
        .await
        .expect_err("no reason");
    assert_eq!(field_violations(&err), ["reason"]);
    let err = identity
        .delete_account(pb::DeleteAccountRequest {
            subject_id: "me".into(),
            password: String::new(),
            reason: 99,
            request_id: "not ascii é".into(),
        })
        .await
        .expect_err("all bad");
    assert_eq!(
        field_violations(&err),
        ["subject_id", "password", "reason", "request_id"]
    );

    assert_eq!(
        rows_naming(&db, &keys, &subject).await,
        full_account_rows(true),
        "refused deletions erase nothing"
    );
    assert_eq!(rows(&db, "billing_archive").await, 0);
    assert_eq!(rows(&db, "erasures").await, 0);

    mesh.logs().assert_clean(&secrets(&person, &text));
    Ok(())
}

#[tokio::test]
async fn deleting_an_account_erases_every_row_and_the_key_and_returns_a_receipt()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, text) = full_account(&mut identity, &person, false).await?;
    let bystander = Person::new();
    let (other, other_text) = full_account(&mut identity, &bystander, false).await?;
    let exported_before = export_len(&mesh, &subject).await?;

    let receipt = identity
        .delete_account(delete(&subject, &person.password, "close-1"))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(receipt.request_id, "close-1");
    assert_eq!(receipt.subject_id, subject);
    assert_eq!(receipt.service, "identity");
    assert!(receipt.key_destroyed);
    assert_eq!(
        receipt.completed_at.as_ref().and_then(from_timestamp),
        Some(start_time())
    );
    assert_eq!(
        erased(&receipt),
        BTreeMap::from([
            ("account.credentials", 1),
            ("account.photo", 1),
            ("account.profile", 1),
            ("account.session", 1),
            ("support.ticket", 3), // the ticket and its two attachments
        ])
    );
    assert_eq!(
        receipt.erased.iter().map(|e| e.count).sum::<u64>(),
        u64::try_from(exported_before)?,
        "every exported record is accounted for"
    );
    assert!(receipt.retained.is_empty(), "no billing record to keep");

    let db = mesh.connect_db("identity").await?;

    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows_naming(&db, &keys, &subject).await, BTreeMap::new());
    assert_eq!(
        rows_naming(&db, &keys, &other).await,
        full_account_rows(false),
        "nobody else's data went"
    );
    let err = identity
        .get_account(pb::GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .authenticate(pb::AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .validate_session(pb::ValidateSessionRequest {
            session_token: text[0].clone(),
        })
        .await
        .expect_err("session gone");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(export_len(&mesh, &subject).await?, 0);
    assert!(export_len(&mesh, &other).await? > 0);

    mesh.logs().assert_clean(&secrets(&person, &text));
    mesh.logs().assert_clean(&secrets(&bystander, &other_text));
    Ok(())
}

#[tokio::test]
async fn a_retried_deletion_returns_the_first_receipt() -> anyhow::Result<()> {
    // DeleteAccount's request_id: "a retry with the same key returns the first receipt",
    // although the password can no longer be checked once the account is gone.
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, text) = full_account(&mut identity, &person, true).await?;

    let first = identity
        .delete_account(delete(&subject, &person.password, "close-twice"))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    clock.advance(chrono::Duration::minutes(1));
    let retry = identity
        .delete_account(delete(&subject, &person.password, "close-twice"))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(retry, first);

    // Someone else's request id is not a way around the password.
    let other = Person::new();
    let (other_subject, other_text) = full_account(&mut identity, &other, false).await?;
    let err = identity
        .delete_account(delete(&other_subject, "a wrong password", "close-twice"))
        .await
        .expect_err("wrong password");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .delete_account(delete(&other_subject, &other.password, "close-twice"))
        .await
        .expect_err("request id of another subject");
    assert_eq!(field_violations(&err), ["request_id"]);
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(
        rows_naming(&db, &keys, &other_subject).await,
        full_account_rows(false)
    );

    mesh.logs().assert_clean(&secrets(&person, &text));
    mesh.logs().assert_clean(&secrets(&other, &other_text));
    Ok(())
}

#[tokio::test]
async fn the_billing_record_is_kept_sealed_under_a_legal_obligation_for_the_retention_policys_period()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, text) = full_account(&mut identity, &person, true).await?;

    let receipt = identity
        .delete_account(delete(&subject, &person.password, ""))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert!(receipt.request_id.starts_with("delete-account-"));
    assert!(receipt.key_destroyed);
    assert_eq!(receipt.retained.len(), 1, "{:?}", receipt.retained);
    let kept = &receipt.retained[0];
    assert_eq!(kept.category, "billing.record");
    assert_eq!(kept.legal_basis, LegalBasis::LegalObligation as i32);
    assert_eq!(kept.count, 1);
    // How long is the retention policy billing.record's alone (one source of truth): the
    // receipt names it and leaves the date to the retention schedule, which follows the
    // policy in force even after an UpsertPolicy.
    assert!(kept.reason.contains("billing.record"), "{}", kept.reason);
    assert_eq!(kept.retain_until, None);

    let db = mesh.connect_db("identity").await?;

    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows_naming(&db, &keys, &subject).await, BTreeMap::new());
    assert_eq!(rows(&db, "billing_archive").await, 1);
    assert_eq!(
        rows_where(&db, "billing_archive", "archive_id", &subject).await,
        0,
        "the archive entry is not keyed by the subject id"
    );

    mesh.logs().assert_clean(&secrets(&person, &text));
    Ok(())
}

/// The key store is a database apart from the data: an erasure whose process dies after
/// the rows are gone but before the key is destroyed leaves the key behind. The retry of
/// the same request (rights retries until it has an answer) destroys it.
#[tokio::test]
async fn a_retried_erasure_destroys_a_key_a_crash_left_behind() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, _) = full_account(&mut identity, &person, true).await?;
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    let keys = pdm_runtime::key_store::connect(mesh.settings(), "identity", &root).await?;
    let before_erasure = keys.export().await?;

    let mut subject_data = mesh.subject_data("identity");
    let first = subject_data
        .erase_subject(erase("dsr-crash", &subject))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert!(first.key_destroyed);
    assert!(
        first.key_backups_gone_by.is_some(),
        "the receipt says until when backups hold the key"
    );
    assert!(!keys.exists(&subject).await?);

    // As if the process died between the commit and the key's destruction.
    keys.import(&before_erasure).await?;
    assert!(keys.exists(&subject).await?);
    let retried = subject_data
        .erase_subject(erase("dsr-crash", &subject))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(retried, first, "the retry answers with the first receipt");
    assert!(
        !keys.exists(&subject).await?,
        "and destroys the key left behind"
    );
    Ok(())
}

/// The same for an account deleted by identity alone (`identity.deletion = "local"`): a
/// retried DeleteAccount is answered with the first receipt without erasing again (the
/// password can no longer be checked), and destroys the key a crash left behind; it used
/// to leave it for good while the receipt said `key_destroyed`.
#[tokio::test]
async fn a_retried_deletion_destroys_a_key_a_crash_left_behind() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let (subject, _) = full_account(&mut identity, &person, false).await?;
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    let keys = pdm_runtime::key_store::connect(mesh.settings(), "identity", &root).await?;
    let before_deletion = keys.export().await?;

    let first = identity
        .delete_account(delete(&subject, &person.password, "close-crash"))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert!(first.key_destroyed);
    assert!(!keys.exists(&subject).await?);

    // As if the process died between the commit and the key's destruction.
    keys.import(&before_deletion).await?;
    assert!(keys.exists(&subject).await?);
    let retried = identity
        .delete_account(delete(&subject, &person.password, "close-crash"))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(retried, first, "the retry answers with the first receipt");
    assert!(
        !keys.exists(&subject).await?,
        "and destroys the key left behind"
    );
    Ok(())
}

#[tokio::test]
async fn erase_subject_is_idempotent_per_request_id() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let (ada, bob) = (Person::new(), Person::new());
    let (a, a_text) = full_account(&mut identity, &ada, true).await?;
    let (b, b_text) = full_account(&mut identity, &bob, false).await?;

    let first = subject_data
        .erase_subject(erase("dsr-1", &a))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert!(first.key_destroyed);
    assert!(!first.erased.is_empty());
    clock.advance(chrono::Duration::hours(1));
    let repeated = subject_data
        .erase_subject(erase("dsr-1", &a))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(
        repeated, first,
        "the same request answers with the first receipt"
    );

    let second = subject_data
        .erase_subject(erase("dsr-2", &a))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(second.request_id, "dsr-2");
    assert_eq!(second.subject_id, a);
    assert!(second.erased.is_empty(), "nothing was left to erase");
    assert!(!second.key_destroyed, "the key was already gone");

    let err = subject_data
        .erase_subject(erase("dsr-1", &b))
        .await
        .expect_err("request id of another subject");
    assert_eq!(field_violations(&err), ["request_id"]);
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(
        rows_naming(&db, &keys, &b).await,
        full_account_rows(false),
        "the refused request erased nothing"
    );
    assert_eq!(rows(&db, "billing_archive").await, 1, "archived once");

    let err = subject_data
        .erase_subject(erase("", "someone"))
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["request_id", "subject_id"]);

    assert_eq!(export_len(&mesh, &a).await?, 0, "nothing left to export");

    mesh.logs().assert_clean(&secrets(&ada, &a_text));
    mesh.logs().assert_clean(&secrets(&bob, &b_text));
    Ok(())
}

#[tokio::test]
async fn erasing_an_unknown_subject_succeeds_with_an_empty_receipt() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut subject_data = mesh.subject_data("identity");
    let unknown = uuid::Uuid::now_v7().to_string();

    let receipt = subject_data
        .erase_subject(erase("dsr-unknown", &unknown))
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(receipt.subject_id, unknown);
    assert!(receipt.erased.is_empty() && receipt.retained.is_empty());
    assert!(!receipt.key_destroyed);
    Ok(())
}
