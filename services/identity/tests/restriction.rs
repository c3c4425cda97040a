//! Restriction of processing ("GDPR Data Protection Rights: the right to restrict
//! processing"; "If you choose to exercise your rights to restrict ... we may not be able to
//! provide all our Services to you").

use pdm_identity::Identity;
use pdm_proto::{
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1 as subject_pb,
};
use pdm_runtime::tonic_types::StatusExt;
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::{self, Person},
};
use tonic::{Code, Status, transport::Channel};

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

fn restrict(subject_id: &str, restricted: bool) -> subject_pb::RestrictSubjectRequest {
    subject_pb::RestrictSubjectRequest {
        subject_id: subject_id.to_owned(),
        restricted,
        request_id: format!("dsr-{}", uuid::Uuid::now_v7()),
    }
}

async fn is_restricted(
    identity: &mut IdentityServiceClient<Channel>,
    subject_id: &str,
) -> anyhow::Result<bool> {
    let account = identity
        .get_account(pb::GetAccountRequest {
            subject_id: subject_id.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    Ok(account.restricted)
}

fn billing(subject_id: &str) -> pb::SetBillingContactRequest {
    pb::SetBillingContactRequest {
        subject_id: subject_id.to_owned(),
        billing_contact: Some(pb::BillingContact {
            name: "Accounts Payable".into(),
            email: "ap@example.com".into(),
            phone: String::new(),
            payment_processor_ref: "cus_restricted".into(),
        }),
    }
}

fn ticket(subject_id: &str, summary: &str) -> pb::CreateSupportTicketRequest {
    pb::CreateSupportTicketRequest {
        subject_id: subject_id.to_owned(),
        contact: "+447700900123".into(),
        summary: summary.to_owned(),
        description: "Please look into it.".into(),
        attachments: Vec::new(),
        special_categories: Vec::new(),
    }
}

fn photo(subject_id: &str) -> pb::SetProfilePhotoRequest {
    pb::SetProfilePhotoRequest {
        subject_id: subject_id.to_owned(),
        photo: fake::png(),
    }
}

fn assert_restricted(status: &Status, what: &str) {
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{what}: {status:?}"
    );
    let failure = status
        .get_details_precondition_failure()
        .expect("a PreconditionFailure detail");
    assert_eq!(failure.violations[0].r#type, "RESTRICTED", "{what}");
}

#[tokio::test]
async fn a_restriction_blocks_new_processing_until_it_is_lifted() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let summary = fake::phrase("Cannot log in");

    let answer = subject_data
        .restrict_subject(restrict(&subject, true))
        .await?
        .into_inner();
    assert!(answer.restricted && answer.subject_known);
    assert!(is_restricted(&mut identity, &subject).await?);
    let again = subject_data
        .restrict_subject(restrict(&subject, true))
        .await?
        .into_inner();
    assert!(again.restricted, "restricting twice is harmless");

    let err = identity
        .set_profile_photo(photo(&subject))
        .await
        .expect_err("photo");
    assert_restricted(&err, "SetProfilePhoto");
    let err = identity
        .set_billing_contact(billing(&subject))
        .await
        .expect_err("billing");
    assert_restricted(&err, "SetBillingContact");
    let err = identity
        .create_support_ticket(ticket(&subject, &summary))
        .await
        .expect_err("ticket");
    assert_restricted(&err, "CreateSupportTicket");
    let db = mesh.connect_db("identity").await?;
    for table in ["profile_photos", "billing_contacts", "support_tickets"] {
        assert_eq!(rows(&db, table).await, 0, "{table}");
    }

    // Policy, "the right to rectification": correcting data stays possible.
    let corrected = Person::new();
    let updated = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: subject.clone(),
            last_name: Some(corrected.last_name.clone()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(updated.last_name, corrected.last_name);
    assert!(
        updated.restricted,
        "rectification does not lift the restriction"
    );

    let lifted = subject_data
        .restrict_subject(restrict(&subject, false))
        .await?
        .into_inner();
    assert!(!lifted.restricted && lifted.subject_known);
    assert!(!is_restricted(&mut identity, &subject).await?);
    identity.set_profile_photo(photo(&subject)).await?;
    identity.set_billing_contact(billing(&subject)).await?;
    identity
        .create_support_ticket(ticket(&subject, &summary))
        .await?;
    for table in ["profile_photos", "billing_contacts", "support_tickets"] {
        assert_eq!(rows(&db, table).await, 1, "{table}");
    }

    let mut secrets = person.secrets();
    secrets.extend(corrected.secrets());
    secrets.push(("ticket summary", &summary));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn a_restricted_subject_can_still_read_its_data_and_delete_its_account() -> anyhow::Result<()>
{
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    identity.set_billing_contact(billing(&subject)).await?;
    subject_data
        .restrict_subject(restrict(&subject, true))
        .await?;

    let contact = identity
        .get_billing_contact(pb::GetBillingContactRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .billing_contact
        .expect("contact");
    assert_eq!(contact.payment_processor_ref, "cus_restricted");

    // Policy, "the right to erasure": a restriction does not stand in its way.
    identity
        .delete_account(pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: pb::DeletionReason::PrivacyConcerns as i32,
            request_id: String::new(),
        })
        .await?;
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 0);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn restricting_an_unknown_subject_reports_it_unknown_and_stores_nothing() -> anyhow::Result<()>
{
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut subject_data = mesh.subject_data("identity");
    let unknown = uuid::Uuid::now_v7().to_string();

    let answer = subject_data
        .restrict_subject(restrict(&unknown, true))
        .await?
        .into_inner();
    assert!(!answer.subject_known);
    assert!(!answer.restricted, "nothing is restricted for nobody");
    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 0);

    let err = subject_data
        .restrict_subject(subject_pb::RestrictSubjectRequest {
            subject_id: "someone".into(),
            restricted: true,
            request_id: "has spaces".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["subject_id", "request_id"]);
    Ok(())
}
