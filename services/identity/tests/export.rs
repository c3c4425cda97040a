//! Access and portability ("GDPR Data Protection Rights: the right to access" and "the
//! right to data portability"; "How to access and control your information": what data,
//! purposes, categories, recipients, how long, and the source).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::LegalBasis,
    identity::v1 as pb,
    subject::v1::{self as subject_pb, SubjectRecord},
};
use pdm_runtime::{ManualClock, convert::from_timestamp};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::field_violations,
    fake::{self, Person},
    start_time,
};
use prost_types::value::Kind;
use sea_orm::{ConnectionTrait, Statement};

async fn export(mesh: &Mesh, subject_id: &str) -> anyhow::Result<Vec<SubjectRecord>> {
    let mut stream = mesh
        .subject_data("identity")
        .export_subject(subject_pb::ExportSubjectRequest {
            subject_id: subject_id.to_owned(),
            request_id: "dsr-access-1".into(),
        })
        .await?
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        records.push(message.record.expect("record"));
    }
    Ok(records)
}

/// A string field of a record's data.
fn text<'a>(record: &'a SubjectRecord, field: &str) -> Option<&'a str> {
    match record.data.as_ref()?.fields.get(field)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s),
        _ => None,
    }
}

fn of<'a>(records: &'a [SubjectRecord], category: &str) -> Vec<&'a SubjectRecord> {
    records.iter().filter(|r| r.category == category).collect()
}

#[tokio::test]
async fn an_export_holds_every_record_with_purposes_legal_basis_source_and_retention()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account")
        .subject_id;
    let photo = fake::jpeg(3000);
    identity
        .set_profile_photo(pb::SetProfilePhotoRequest {
            subject_id: subject.clone(),
            photo: photo.clone(),
        })
        .await?;
    // Two sign-ins in the same instant (two devices): two sessions, two records.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let session = identity
            .authenticate(pb::AuthenticateRequest {
                email: person.email.clone(),
                password: person.password.clone(),
            })
            .await?
            .into_inner();
        tokens.push(session.session_token);
    }
    let billing_name = fake::phrase("Billing Office");
    identity
        .set_billing_contact(pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(pb::BillingContact {
                name: billing_name.clone(),
                email: "billing@example.com".into(),
                phone: String::new(),
                payment_processor_ref: "cus_export".into(),
            }),
        })
        .await?;
    clock.advance(Duration::minutes(1));
    let summary = fake::phrase("Broken link");
    let note = fake::phrase("the link on the pricing page");
    let ticket = identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            subject_id: subject.clone(),
            contact: person.email.clone(),
            summary: summary.clone(),
            description: "It returns a 404.".into(),
            attachments: vec![
                pb::TicketAttachment {
                    file_name: "note.txt".into(),
                    content: note.clone().into_bytes(),
                    ..Default::default()
                },
                pb::TicketAttachment {
                    file_name: "page.pdf".into(),
                    content: fake::pdf(),
                    ..Default::default()
                },
            ],
            special_categories: Vec::new(),
        })
        .await?
        .into_inner()
        .ticket
        .expect("ticket");

    let records = export(&mesh, &subject).await?;
    let counts: BTreeMap<&str, usize> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.category.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        counts,
        BTreeMap::from([
            ("account.credentials", 1),
            ("account.photo", 1),
            ("account.profile", 1),
            ("account.session", 2),
            ("billing.record", 1),
            ("support.ticket", 3), // the ticket and its two attachments
        ])
    );
    for r in &records {
        let what = format!("{} {}", r.category, r.record_id);
        assert_eq!(r.service, "identity", "{what}");
        assert!(!r.record_id.is_empty(), "{what}");
        assert!(!r.purposes.is_empty(), "{what}: purposes");
        assert_ne!(r.legal_basis, LegalBasis::Unspecified as i32, "{what}");
        assert!(!r.source.is_empty(), "{what}: source");
        let retention = r.retention.as_ref().expect("retention");
        assert!(!retention.rule.is_empty(), "{what}: retention rule");
    }
    let ids: BTreeSet<(&str, &str)> = records
        .iter()
        .map(|r| (r.category.as_str(), r.record_id.as_str()))
        .collect();
    assert_eq!(
        ids.len(),
        records.len(),
        "record ids are unique within a category"
    );

    let profile = of(&records, "account.profile")[0];
    assert_eq!(profile.record_id, subject);
    assert_eq!(
        text(profile, "first_name"),
        Some(person.first_name.as_str())
    );
    assert_eq!(text(profile, "last_name"), Some(person.last_name.as_str()));
    assert_eq!(text(profile, "email"), Some(person.email.as_str()));
    assert_eq!(text(profile, "phone"), Some(person.phone.as_str()));
    assert_eq!(text(profile, "region"), Some("REGION_UK"));
    assert_eq!(
        profile.created_at.as_ref().and_then(from_timestamp),
        Some(start_time())
    );
    assert_eq!(profile.legal_basis, LegalBasis::Contract as i32);

    // Credentials: said to exist, never the hash.
    let db = mesh.connect_db("identity").await?;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT password_hash FROM accounts",
        ))
        .await?
        .expect("account row");
    let hash: String = row.try_get("", "password_hash")?;
    assert!(hash.starts_with("$argon2id$"), "the real hash was read");
    let everything = format!("{records:?}");
    assert!(
        !everything.contains(&hash),
        "the password hash is not exported"
    );
    assert!(!everything.contains("$argon2"));
    assert!(!everything.contains(&person.password));
    for token in &tokens {
        assert!(!everything.contains(token.as_str()), "no session token");
    }

    let photo_record = of(&records, "account.photo")[0];
    let attached = photo_record.attachment.as_ref().expect("photo bytes");
    assert_eq!(attached.content_type, "image/jpeg");
    assert_eq!(attached.content, photo);

    for session in of(&records, "account.session") {
        let retention = session.retention.as_ref().expect("retention");
        assert_eq!(
            retention.delete_after.as_ref().and_then(from_timestamp),
            Some(start_time() + Duration::days(1)),
            "a session goes when it expires"
        );
    }

    let billing = of(&records, "billing.record")[0];
    assert_eq!(text(billing, "name"), Some(billing_name.as_str()));
    assert_eq!(text(billing, "payment_processor_ref"), Some("cus_export"));

    let tickets = of(&records, "support.ticket");
    let main = tickets
        .iter()
        .find(|r| r.record_id == ticket.ticket_id)
        .expect("the ticket itself");
    assert_eq!(text(main, "summary"), Some(summary.as_str()));
    assert_eq!(text(main, "contact"), Some(person.email.as_str()));
    let files: BTreeMap<&str, (&str, &[u8])> = tickets
        .iter()
        .filter_map(|r| r.attachment.as_ref())
        .map(|a| {
            (
                a.name.as_str(),
                (a.content_type.as_str(), a.content.as_slice()),
            )
        })
        .collect();
    let pdf = fake::pdf();
    assert_eq!(
        files,
        BTreeMap::from([
            ("note.txt", ("text/plain", note.as_bytes())),
            ("page.pdf", ("application/pdf", pdf.as_slice())),
        ])
    );

    let mut secrets = person.secrets();
    secrets.extend(tokens.iter().map(|t| ("session token", t.as_str())));
    secrets.extend([
        ("billing name", billing_name.as_str()),
        ("ticket summary", summary.as_str()),
        ("attachment text", note.as_str()),
    ]);
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn an_export_shows_the_data_as_rectified_and_no_one_elses() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let (ada, bob) = (Person::new(), Person::new());
    let a = identity
        .create_account(ada.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account")
        .subject_id;
    identity.create_account(bob.sign_up()).await?;
    let corrected = Person::new();
    identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: a.clone(),
            first_name: Some(corrected.first_name.clone()),
            ..Default::default()
        })
        .await?;

    let records = export(&mesh, &a).await?;
    let categories: Vec<&str> = records.iter().map(|r| r.category.as_str()).collect();
    assert_eq!(categories, ["account.profile", "account.credentials"]);
    assert_eq!(
        text(&records[0], "first_name"),
        Some(corrected.first_name.as_str())
    );
    let everything = format!("{records:?}");
    assert!(
        !everything.contains(&ada.first_name),
        "the old value is gone"
    );
    assert!(!everything.contains(&bob.email), "no one else's data");

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&corrected.secrets());
    Ok(())
}

#[tokio::test]
async fn an_unknown_subject_exports_an_empty_stream_and_a_malformed_one_is_refused()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    identity.create_account(person.sign_up()).await?;

    // Empty, not NOT_FOUND: the answer never reveals whether the subject exists.
    let records = export(&mesh, &uuid::Uuid::now_v7().to_string()).await?;
    assert!(records.is_empty());

    let err = mesh
        .subject_data("identity")
        .export_subject(subject_pb::ExportSubjectRequest {
            subject_id: "ada@example.org".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["subject_id"]);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
