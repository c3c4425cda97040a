//! Encryption at rest ("Data Security & Protection": "2. Encryption of data at rest"): no
//! personal value can be read in the service's raw database bytes.

use pdm_identity::Identity;
use pdm_proto::identity::v1 as pb;
use pdm_testkit::{
    TestMesh,
    assert::{contains, raw_storage, rows},
    fake::{self, Person},
};

#[tokio::test]
async fn personal_fields_are_unreadable_in_raw_storage() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let account = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account");
    let subject = account.subject_id;
    assert_eq!(account.phone, person.phone, "the phone was stored");

    let billing_name = fake::phrase("Accounts Payable");
    let billing_email = format!("{}@example.com", fake::phrase("payables").replace(' ', "."));
    let processor_ref = fake::phrase("cus").replace(' ', "_");
    identity
        .set_billing_contact(pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(pb::BillingContact {
                name: billing_name.clone(),
                email: billing_email.clone(),
                phone: "+442079460000".into(),
                payment_processor_ref: processor_ref.clone(),
            }),
        })
        .await?;
    let summary = fake::phrase("Dashboard blank");
    let description = fake::phrase("Since Tuesday the dashboard shows nothing for");
    let attachment_text = fake::phrase("console output");
    let file_name = format!("{}.txt", fake::phrase("diagnostics").replace(' ', "-"));
    identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            subject_id: subject.clone(),
            contact: person.email.clone(),
            summary: summary.clone(),
            description: description.clone(),
            attachments: vec![pb::TicketAttachment {
                file_name: file_name.clone(),
                content: attachment_text.clone().into_bytes(),
                ..Default::default()
            }],
            special_categories: Vec::new(),
        })
        .await?;
    let db = mesh.connect_db("identity").await?;
    for table in [
        "accounts",
        "billing_contacts",
        "support_tickets",
        "ticket_attachments",
    ] {
        assert_eq!(rows(&db, table).await, 1, "{table}");
    }

    let raw = raw_storage(&mesh, "identity").await;
    // The dump is real: the subject id, stored in clear as the key, is in it.
    assert!(
        contains(&raw, &subject),
        "the subject id must be visible in the raw dump"
    );
    let mut secrets = person.secrets();
    secrets.extend([
        ("billing name", billing_name.as_str()),
        ("billing email", billing_email.as_str()),
        ("processor reference", processor_ref.as_str()),
        ("ticket summary", summary.as_str()),
        ("ticket description", description.as_str()),
        ("attachment text", attachment_text.as_str()),
        ("attachment file name", file_name.as_str()),
    ]);
    for (kind, value) in &secrets {
        assert!(!contains(&raw, value), "{kind} is stored in plaintext");
    }

    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn rectified_values_are_sealed_too() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account")
        .subject_id;
    let corrected = Person::new();
    identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: subject.clone(),
            first_name: Some(corrected.first_name.clone()),
            email: Some(corrected.email.clone()),
            phone: Some(corrected.phone.clone()),
            ..Default::default()
        })
        .await?;

    let raw = raw_storage(&mesh, "identity").await;
    assert!(contains(&raw, &subject));
    for (kind, value) in [
        ("first name", corrected.first_name.as_str()),
        ("email", corrected.email.as_str()),
        ("phone", corrected.phone.as_str()),
    ] {
        assert!(
            !contains(&raw, value),
            "rectified {kind} stored in plaintext"
        );
    }

    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&corrected.secrets());
    Ok(())
}
