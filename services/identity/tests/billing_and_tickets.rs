//! Billing contacts and support tickets ("Information You Provide for our Support
//! channels" and "Payment information": "We don't actually collect or store this sensitive
//! payment information ourselves").

use chrono::{Duration, TimeZone, Utc};
use pdm_identity::Identity;
use pdm_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use pdm_runtime::{ManualClock, convert::from_timestamp};
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::{self, Person},
};
use tonic::{Code, transport::Channel};

const ONE_MIB: usize = 1024 * 1024;

async fn sign_up(
    identity: &mut IdentityServiceClient<Channel>,
    person: &Person,
) -> anyhow::Result<String> {
    let account = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account");
    Ok(account.subject_id)
}

/// A billing contact made of values unique to this run.
fn contact() -> pb::BillingContact {
    let name = fake::phrase("Billing Dept");
    pb::BillingContact {
        email: format!("{}@example.com", name.replace(' ', ".").to_lowercase()),
        name,
        phone: "+44 20 7946 0958".into(),
        payment_processor_ref: fake::phrase("cus").replace(' ', "_"),
    }
}

fn contact_secrets(c: &pb::BillingContact) -> Vec<(&'static str, &str)> {
    vec![
        ("billing name", c.name.as_str()),
        ("billing email", c.email.as_str()),
        ("processor reference", c.payment_processor_ref.as_str()),
    ]
}

fn set_billing(
    subject_id: &str,
    contact: Option<pb::BillingContact>,
) -> pb::SetBillingContactRequest {
    pb::SetBillingContactRequest {
        subject_id: subject_id.to_owned(),
        billing_contact: contact,
    }
}

fn get_billing(subject_id: &str) -> pb::GetBillingContactRequest {
    pb::GetBillingContactRequest {
        subject_id: subject_id.to_owned(),
    }
}

fn attachment(file_name: &str, content: Vec<u8>) -> pb::TicketAttachment {
    pb::TicketAttachment {
        file_name: file_name.to_owned(),
        content,
        ..Default::default()
    }
}

fn ticket(subject_id: &str, person: &Person) -> pb::CreateSupportTicketRequest {
    pb::CreateSupportTicketRequest {
        subject_id: subject_id.to_owned(),
        contact: person.email.clone(),
        summary: fake::phrase("Export fails"),
        description: fake::phrase("The export button spins for ever when I"),
        attachments: Vec::new(),
        special_categories: Vec::new(),
    }
}

fn list(subject_id: &str) -> pb::ListSupportTicketsRequest {
    pb::ListSupportTicketsRequest {
        subject_id: subject_id.to_owned(),
    }
}

#[tokio::test]
async fn a_billing_contact_is_stored_read_back_and_replaced() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let err = identity
        .get_billing_contact(get_billing(&subject))
        .await
        .expect_err("none yet");
    assert_eq!(err.code(), Code::NotFound);

    let first = contact();
    let mut sent = first.clone();
    sent.email = format!(" {} ", first.email.to_uppercase());
    let stored = identity
        .set_billing_contact(set_billing(&subject, Some(sent)))
        .await?
        .into_inner()
        .billing_contact
        .expect("contact");
    let expected = pb::BillingContact {
        phone: "+442079460958".into(),
        ..first.clone()
    };
    assert_eq!(stored, expected, "email normalised, phone in E.164");
    let got = identity
        .get_billing_contact(get_billing(&subject))
        .await?
        .into_inner()
        .billing_contact
        .expect("contact");
    assert_eq!(got, expected);

    let second = pb::BillingContact {
        phone: String::new(),
        ..contact()
    };
    identity
        .set_billing_contact(set_billing(&subject, Some(second.clone())))
        .await?;
    let got = identity
        .get_billing_contact(get_billing(&subject))
        .await?
        .into_inner()
        .billing_contact
        .expect("contact");
    assert_eq!(got, second, "the new contact replaced the old one");
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "billing_contacts").await, 1);

    let unknown = uuid::Uuid::now_v7().to_string();
    let err = identity
        .set_billing_contact(set_billing(&unknown, Some(contact())))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .get_billing_contact(get_billing(&unknown))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);

    let mut secrets = person.secrets();
    secrets.extend(contact_secrets(&first));
    secrets.extend(contact_secrets(&second));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn bad_billing_fields_are_reported_by_their_nested_path_and_nothing_is_stored()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let err = identity
        .set_billing_contact(set_billing(
            &subject,
            Some(pb::BillingContact {
                name: "  ".into(),
                email: "billing at example dot com".into(),
                phone: "020 7946 0958".into(),
                payment_processor_ref: "r".repeat(201),
            }),
        ))
        .await
        .expect_err("all bad");
    assert_eq!(
        field_violations(&err),
        [
            "billing_contact.name",
            "billing_contact.email",
            "billing_contact.phone",
            "billing_contact.payment_processor_ref"
        ]
    );
    let err = identity
        .set_billing_contact(set_billing(&subject, None))
        .await
        .expect_err("missing");
    assert_eq!(field_violations(&err), ["billing_contact"]);
    let err = identity
        .set_billing_contact(set_billing("nope", None))
        .await
        .expect_err("missing");
    assert_eq!(field_violations(&err), ["subject_id", "billing_contact"]);

    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "billing_contacts").await, 0);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn card_numbers_are_refused_in_billing_fields() -> anyhow::Result<()> {
    // Policy, "Payment information": card numbers go to the payment processor, never to us.
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let err = identity
        .set_billing_contact(set_billing(
            &subject,
            Some(pb::BillingContact {
                name: "Ada, card 4242 4242 4242 4242".into(),
                payment_processor_ref: "4111111111111111".into(),
                ..contact()
            }),
        ))
        .await
        .expect_err("card numbers");
    assert_eq!(
        field_violations(&err),
        [
            "billing_contact.name",
            "billing_contact.payment_processor_ref"
        ]
    );
    let err = identity
        .set_billing_contact(set_billing(
            &subject,
            Some(pb::BillingContact {
                email: "5555555555554444@example.com".into(),
                ..contact()
            }),
        ))
        .await
        .expect_err("card number");
    assert_eq!(field_violations(&err), ["billing_contact.email"]);
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "billing_contacts").await, 0);

    // A long reference none of whose 13- to 19-digit tails passes the Luhn check is not
    // a card number.
    identity
        .set_billing_contact(set_billing(
            &subject,
            Some(pb::BillingContact {
                payment_processor_ref: "cus_1234567890123457".into(),
                ..contact()
            }),
        ))
        .await?;
    assert_eq!(rows(&db, "billing_contacts").await, 1);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_ticket_keeps_its_attachments_and_the_listing_omits_their_contents() -> anyhow::Result<()>
{
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let log = fake::phrase("error at line 42:");

    let mut request = ticket(&subject, &person);
    request.contact = format!("  {}  ", person.email.to_uppercase());
    request.attachments = vec![
        pb::TicketAttachment {
            // The claimed type is ignored: the content decides.
            content_type: "application/x-msdownload".into(),
            ..attachment("screenshot.png", fake::png())
        },
        attachment("invoice.pdf", fake::pdf()),
        attachment("console.log", log.clone().into_bytes()),
    ];
    let (summary, description) = (request.summary.clone(), request.description.clone());
    let created = identity
        .create_support_ticket(request)
        .await?
        .into_inner()
        .ticket
        .expect("ticket");
    assert_eq!(created.subject_id, subject);
    assert_eq!(created.contact, person.email, "contact normalised");
    assert_eq!(created.summary, summary);
    assert_eq!(created.description, description);

    let listed = identity
        .list_support_tickets(list(&subject))
        .await?
        .into_inner()
        .tickets;
    assert_eq!(listed.len(), 1);
    let got = &listed[0];
    assert_eq!(got.ticket_id, created.ticket_id);
    assert_eq!(got.summary, summary);
    assert_eq!(got.description, description);
    assert_eq!(got.contact, person.email);
    let summaries: Vec<(&str, &str, u64, usize)> = got
        .attachments
        .iter()
        .map(|a| {
            (
                a.file_name.as_str(),
                a.content_type.as_str(),
                a.size_bytes,
                a.content.len(),
            )
        })
        .collect();
    assert_eq!(
        summaries,
        [
            (
                "screenshot.png",
                "image/png",
                u64::try_from(fake::png().len())?,
                0
            ),
            (
                "invoice.pdf",
                "application/pdf",
                u64::try_from(fake::pdf().len())?,
                0
            ),
            ("console.log", "text/plain", u64::try_from(log.len())?, 0),
        ]
    );
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "support_tickets").await, 1);
    assert_eq!(rows(&db, "ticket_attachments").await, 3);

    let mut secrets = person.secrets();
    secrets.extend([
        ("ticket summary", summary.as_str()),
        ("ticket description", description.as_str()),
        ("attachment text", log.as_str()),
    ]);
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn tickets_are_listed_newest_first() -> anyhow::Result<()> {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .expect("date");
    let clock = ManualClock::new(start);
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let mut opened = Vec::new();
    for _ in 0..3 {
        let t = identity
            .create_support_ticket(ticket(&subject, &person))
            .await?
            .into_inner()
            .ticket
            .expect("ticket");
        opened.push(t.ticket_id);
        clock.advance(Duration::minutes(7));
    }
    let listed = identity
        .list_support_tickets(list(&subject))
        .await?
        .into_inner()
        .tickets;
    let ids: Vec<&str> = listed.iter().map(|t| t.ticket_id.as_str()).collect();
    let newest_first: Vec<&str> = opened.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    let times: Vec<_> = listed
        .iter()
        .filter_map(|t| t.created_at.as_ref().and_then(from_timestamp))
        .collect();
    assert_eq!(
        times,
        [
            start + Duration::minutes(14),
            start + Duration::minutes(7),
            start
        ]
    );

    // Another subject sees none of them.
    let other = Person::new();
    let other_subject = sign_up(&mut identity, &other).await?;
    let theirs = identity
        .list_support_tickets(list(&other_subject))
        .await?
        .into_inner()
        .tickets;
    assert!(theirs.is_empty());

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_attachment_of_exactly_one_mib_is_accepted() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let mut request = ticket(&subject, &person);
    request.attachments = vec![attachment("photo.jpg", fake::jpeg(ONE_MIB))];
    let created = identity
        .create_support_ticket(request)
        .await?
        .into_inner()
        .ticket
        .expect("ticket");
    assert_eq!(created.attachments[0].size_bytes, 1_048_576);
    assert_eq!(created.attachments[0].content_type, "image/jpeg");

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn too_many_too_large_or_executable_attachments_are_refused_and_nothing_is_stored()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let note = || attachment("note.txt", b"see the screenshot".to_vec());

    let cases: [(&str, Vec<pb::TicketAttachment>, Vec<&str>); 5] = [
        (
            "four attachments",
            vec![note(), note(), note(), note()],
            vec!["attachments"],
        ),
        (
            "one byte over 1 MiB",
            vec![
                note(),
                attachment("big.pdf", {
                    let mut pdf = fake::pdf();
                    pdf.resize(ONE_MIB + 1, b' ');
                    pdf
                }),
            ],
            vec!["attachments[1].content"],
        ),
        (
            "a Windows executable",
            vec![attachment(
                "fix.exe",
                b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec(),
            )],
            vec!["attachments[0].content"],
        ),
        (
            "an ELF binary named like a picture",
            vec![
                note(),
                note(),
                attachment("cat.png", b"\x7fELF\x02\x01\x01\0\0\0".to_vec()),
            ],
            vec!["attachments[2].content"],
        ),
        (
            "an empty file without a name",
            vec![attachment("", Vec::new())],
            vec!["attachments[0].file_name", "attachments[0].content"],
        ),
    ];
    for (what, attachments, fields) in cases {
        let mut request = ticket(&subject, &person);
        request.attachments = attachments;
        let err = identity
            .create_support_ticket(request)
            .await
            .expect_err(what);
        assert_eq!(field_violations(&err), fields, "{what}");
    }

    let err = identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            subject_id: "nope".into(),
            contact: "call me maybe".into(),
            summary: String::new(),
            description: "d".repeat(10_001),
            attachments: Vec::new(),
            special_categories: Vec::new(),
        })
        .await
        .expect_err("every field bad");
    assert_eq!(
        field_violations(&err),
        ["subject_id", "contact", "summary", "description"]
    );

    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "support_tickets").await, 0);
    assert_eq!(rows(&db, "ticket_attachments").await, 0);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn card_numbers_in_ticket_text_or_text_attachments_are_refused() -> anyhow::Result<()> {
    // Policy, "Payment information": not even a support ticket may carry a card number.
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let mut request = ticket(&subject, &person);
    request.description = "I was charged twice on 4111 1111 1111 1111, please refund".into();
    let err = identity
        .create_support_ticket(request)
        .await
        .expect_err("card in description");
    assert_eq!(field_violations(&err), ["description"]);

    let mut request = ticket(&subject, &person);
    request.summary = "Card 5555-5555-5555-4444 declined".into();
    request.attachments = vec![
        attachment("receipt.pdf", fake::pdf()),
        attachment(
            "statement.txt",
            b"date;amount;card\n2026-11-01;10.00;4242424242424242\n".to_vec(),
        ),
    ];
    let err = identity
        .create_support_ticket(request)
        .await
        .expect_err("card in summary and text attachment");
    assert_eq!(
        field_violations(&err),
        ["summary", "attachments[1].content"]
    );

    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "support_tickets").await, 0);
    assert_eq!(rows(&db, "ticket_attachments").await, 0);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn tickets_of_unknown_or_malformed_subjects() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let unknown = uuid::Uuid::now_v7().to_string();

    let err = identity
        .create_support_ticket(ticket(&unknown, &person))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .list_support_tickets(list(&unknown))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .list_support_tickets(list("x"))
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["subject_id"]);

    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "support_tickets").await, 0);
    Ok(())
}
