//! Bad input is refused with a field violation naming the field, and nothing is stored.
//! Policy, "Payment information": "We don't actually collect or store this sensitive
//! payment information ourselves": no free-text field of any request may carry a payment
//! card number, however it is typed.

use pdm_identity::Identity;
use pdm_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use pdm_runtime::tonic_types::StatusExt;
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows},
    fake::{self, Person},
};
use tonic::{Status, transport::Channel};

/// A card number as people type it: plain, grouped by spaces, by hyphens, and after
/// another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

/// The violation a card number gets.
const CARD_VIOLATION: &str = "must not contain a payment card number";

/// What a field holds: free text takes the card as typed; an email address also takes
/// it as an otherwise well-formed address, which the address format lets through.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Text,
    Email,
}

/// The values to try in a field of `shape`.
fn tries(shape: Shape) -> Vec<String> {
    let typed = CARDS.iter().map(|c| (*c).to_owned());
    match shape {
        Shape::Text => typed.collect(),
        Shape::Email => typed
            .chain(
                CARDS
                    .iter()
                    .map(|c| format!("{}@example.org", c.replace(' ', "-"))),
            )
            .collect(),
    }
}

/// Asserts `answer` is INVALID_ARGUMENT with one violation: a card number in `field`.
fn assert_card_refused<T: std::fmt::Debug>(answer: Result<T, Status>, field: &str, value: &str) {
    let status = match answer {
        Ok(ok) => panic!("{field} = {value:?} was accepted: {ok:?}"),
        Err(status) => status,
    };
    assert_eq!(field_violations(&status), [field], "{field} = {value:?}");
    let descriptions: Vec<String> = status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| v.description)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(descriptions, [CARD_VIOLATION], "{field} = {value:?}");
}

/// The card numbers, for the check that no log line holds one.
fn card_secrets() -> Vec<(&'static str, &'static str)> {
    CARDS.iter().map(|c| ("card number", *c)).collect()
}

async fn account(
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
) -> anyhow::Result<pb::Account> {
    identity
        .get_account(pb::GetAccountRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .ok_or_else(|| anyhow::anyhow!("no account"))
}

fn billing_contact() -> pb::BillingContact {
    pb::BillingContact {
        name: fake::phrase("Billing Dept"),
        email: "billing@example.com".into(),
        phone: String::new(),
        payment_processor_ref: fake::phrase("cus").replace(' ', "_"),
    }
}

fn ticket(subject: &str, person: &Person) -> pb::CreateSupportTicketRequest {
    pb::CreateSupportTicketRequest {
        subject_id: subject.to_owned(),
        contact: person.email.clone(),
        summary: fake::phrase("Export fails"),
        description: fake::phrase("The export button spins for ever when I"),
        attachments: vec![pb::TicketAttachment {
            file_name: "console.log".into(),
            content: b"error at line 42".to_vec(),
            ..Default::default()
        }],
        special_categories: Vec::new(),
    }
}

type Set<R> = fn(&mut R, String);

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let db = mesh.connect_db("identity").await?;

    // CreateAccount.
    let sign_up: [(&str, Shape, Set<pb::CreateAccountRequest>); 3] = [
        ("first_name", Shape::Text, |r, v| r.first_name = v),
        ("last_name", Shape::Text, |r, v| r.last_name = v),
        ("email", Shape::Email, |r, v| r.email = v),
    ];
    for (field, shape, set) in sign_up {
        for value in tries(shape) {
            let mut request = Person::new().sign_up();
            set(&mut request, value.clone());
            assert_card_refused(identity.create_account(request).await, field, &value);
        }
    }
    assert_eq!(rows(&db, "accounts").await, 1, "the first sign-up only");

    // UpdateProfile.
    let before = account(&mut identity, &subject).await?;
    let update: [(&str, Shape, Set<pb::UpdateProfileRequest>); 3] = [
        ("first_name", Shape::Text, |r, v| r.first_name = Some(v)),
        ("last_name", Shape::Text, |r, v| r.last_name = Some(v)),
        ("email", Shape::Email, |r, v| r.email = Some(v)),
    ];
    for (field, shape, set) in update {
        for value in tries(shape) {
            let mut request = pb::UpdateProfileRequest {
                subject_id: subject.clone(),
                ..Default::default()
            };
            set(&mut request, value.clone());
            assert_card_refused(identity.update_profile(request).await, field, &value);
        }
    }
    assert_eq!(
        account(&mut identity, &subject).await?,
        before,
        "the profile is unchanged"
    );

    // SetBillingContact.
    let billing: [(&str, Shape, Set<pb::BillingContact>); 3] = [
        ("billing_contact.name", Shape::Text, |c, v| c.name = v),
        ("billing_contact.email", Shape::Email, |c, v| c.email = v),
        (
            "billing_contact.payment_processor_ref",
            Shape::Text,
            |c, v| {
                c.payment_processor_ref = v;
            },
        ),
    ];
    for (field, shape, set) in billing {
        for value in tries(shape) {
            let mut contact = billing_contact();
            set(&mut contact, value.clone());
            let request = pb::SetBillingContactRequest {
                subject_id: subject.clone(),
                billing_contact: Some(contact),
            };
            assert_card_refused(identity.set_billing_contact(request).await, field, &value);
        }
    }
    assert_eq!(rows(&db, "billing_contacts").await, 0);

    // CreateSupportTicket.
    let tickets: [(&str, Shape, Set<pb::CreateSupportTicketRequest>); 5] = [
        ("contact", Shape::Email, |r, v| r.contact = v),
        ("summary", Shape::Text, |r, v| r.summary = v),
        ("description", Shape::Text, |r, v| r.description = v),
        ("attachments[0].file_name", Shape::Text, |r, v| {
            r.attachments[0].file_name = v;
        }),
        // A text attachment is text too.
        ("attachments[0].content", Shape::Text, |r, v| {
            r.attachments[0].content = format!("date;amount;card\n2026-11-01;10.00;{v}\n").into();
        }),
    ];
    for (field, shape, set) in tickets {
        for value in tries(shape) {
            let mut request = ticket(&subject, &person);
            set(&mut request, value.clone());
            assert_card_refused(identity.create_support_ticket(request).await, field, &value);
        }
    }
    assert_eq!(rows(&db, "support_tickets").await, 0);
    assert_eq!(rows(&db, "ticket_attachments").await, 0);

    // The same requests without the card go through.
    accepted(&mesh, &mut identity, &subject, &person).await?;
    let mut secrets = person.secrets();
    secrets.extend(card_secrets());
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

/// The valid requests the refused ones were made from are accepted (so each refusal was
/// the card's doing), and a long number that holds no card is not taken for one.
async fn accepted(
    mesh: &Mesh,
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
    person: &Person,
) -> anyhow::Result<()> {
    identity.create_account(Person::new().sign_up()).await?;
    identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: subject.to_owned(),
            first_name: Some("Ada 7".into()),
            ..Default::default()
        })
        .await?;
    identity
        .set_billing_contact(pb::SetBillingContactRequest {
            subject_id: subject.to_owned(),
            billing_contact: Some(billing_contact()),
        })
        .await?;
    let mut request = ticket(subject, person);
    // A phone number is a phone number, even one whose digits pass the Luhn check.
    request.contact = "+44 7700 900 0007".into();
    request.description = "order 12345 arrived late\nqty 2".into();
    identity.create_support_ticket(request).await?;
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 2);
    assert_eq!(rows(&db, "billing_contacts").await, 1);
    assert_eq!(rows(&db, "support_tickets").await, 1);
    assert_eq!(rows(&db, "ticket_attachments").await, 1);
    Ok(())
}
