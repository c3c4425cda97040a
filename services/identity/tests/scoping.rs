//! Least privilege per subject: a company client sees only the subjects it is linked with
//! (it created the account, the subject signed in through it, or it presented the
//! subject's session to LinkSubject). For any other subject every method answers as for
//! a subject that does not exist. Policy, "Data Security & Protection": "Restricted
//! access"; "service providers ... only the information they need".

use pdm_identity::Identity;
use pdm_proto::identity::v1::{
    self as pb, identity_service_client::IdentityServiceClient, verify_subject_request::Credential,
};
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tonic::{Code, transport::Channel};

fn client(mesh: &Mesh, caller: Caller) -> anyhow::Result<IdentityServiceClient<Channel>> {
    Ok(IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &caller)?,
    ))
}

fn other_client(mesh: &Mesh, name: &str) -> anyhow::Result<IdentityServiceClient<Channel>> {
    client(mesh, Caller::Client(name.to_owned()))
}

/// Every subject method's status for `subject` as `identity`'s caller.
async fn codes(
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
) -> Vec<(&'static str, Code)> {
    let s = || subject.to_owned();
    fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
        r.map_or_else(|e| e.code(), |_| Code::Ok)
    }
    vec![
        (
            "GetAccount",
            code(
                identity
                    .get_account(pb::GetAccountRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "GetRegion",
            code(
                identity
                    .get_region(pb::GetRegionRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "UpdateProfile",
            code(
                identity
                    .update_profile(pb::UpdateProfileRequest {
                        subject_id: s(),
                        email: Some("taken.over@example.org".into()),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "GetProfilePhoto",
            code(
                identity
                    .get_profile_photo(pb::GetProfilePhotoRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "GetPublicProfile",
            code(
                identity
                    .get_public_profile(pb::GetPublicProfileRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "GetOrganisation",
            code(
                identity
                    .get_organisation(pb::GetOrganisationRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "SetProfilePhoto",
            code(
                identity
                    .set_profile_photo(pb::SetProfilePhotoRequest {
                        subject_id: s(),
                        photo: pdm_testkit::fake::png(),
                    })
                    .await,
            ),
        ),
        (
            "GetBillingContact",
            code(
                identity
                    .get_billing_contact(pb::GetBillingContactRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "SetBillingContact",
            code(
                identity
                    .set_billing_contact(pb::SetBillingContactRequest {
                        subject_id: s(),
                        billing_contact: Some(pb::BillingContact {
                            name: "Other Name".into(),
                            email: "billing@example.org".into(),
                            phone: String::new(),
                            payment_processor_ref: "cus_1".into(),
                        }),
                    })
                    .await,
            ),
        ),
        (
            "ListSupportTickets",
            code(
                identity
                    .list_support_tickets(pb::ListSupportTicketsRequest { subject_id: s() })
                    .await,
            ),
        ),
        (
            "CreateSupportTicket",
            code(
                identity
                    .create_support_ticket(pb::CreateSupportTicketRequest {
                        subject_id: s(),
                        contact: "someone@example.org".into(),
                        summary: "Hello there".into(),
                        description: "Something about the account".into(),
                        attachments: Vec::new(),
                        special_categories: Vec::new(),
                    })
                    .await,
            ),
        ),
        (
            "VerifySubject",
            code(
                identity
                    .verify_subject(pb::VerifySubjectRequest {
                        subject_id: s(),
                        credential: Some(Credential::Password("not the password at all".into())),
                    })
                    .await,
            ),
        ),
        (
            "DeleteAccount",
            code(
                identity
                    .delete_account(pb::DeleteAccountRequest {
                        subject_id: s(),
                        password: "not the password at all".into(),
                        reason: pb::DeletionReason::NoLongerNeeded as i32,
                        request_id: String::new(),
                    })
                    .await,
            ),
        ),
    ]
}

#[tokio::test]
async fn a_client_without_a_link_gets_the_answers_for_a_subject_that_does_not_exist()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut stranger = other_client(&mesh, "stranger")?;

    let for_theirs = codes(&mut stranger, &subject).await;
    let nobody = pdm_runtime::SubjectId::new_v7().to_string();
    let for_nobody = codes(&mut stranger, &nobody).await;
    assert_eq!(
        for_theirs, for_nobody,
        "a linked subject must look like no subject"
    );
    for (method, code) in &for_theirs {
        let expected = if matches!(*method, "VerifySubject" | "DeleteAccount") {
            Code::Unauthenticated
        } else {
            Code::NotFound
        };
        assert_eq!(*code, expected, "{method}");
    }
    // Nothing changed: the owner's client still sees the original profile.
    let account = mesh
        .identity()
        .get_account(pb::GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.email, person.email.to_lowercase());
    assert!(!account.has_photo);
    Ok(())
}

#[tokio::test]
async fn a_sign_in_or_a_presented_session_links_a_client() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // The subject signs in through the shop: the shop now serves them.
    let mut shop = other_client(&mesh, "shop")?;
    let session = shop
        .authenticate(pb::AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?
        .into_inner();
    shop.get_account(pb::GetAccountRequest {
        subject_id: subject.clone(),
    })
    .await?;

    // The helpdesk is shown the subject's live session and links itself.
    let mut helpdesk = other_client(&mesh, "helpdesk")?;
    let err = helpdesk
        .get_account(pb::GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect_err("not linked yet");
    assert_eq!(err.code(), Code::NotFound);
    let linked = helpdesk
        .link_subject(pb::LinkSubjectRequest {
            session_token: session.session_token.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(linked.subject_id, subject);
    helpdesk
        .get_account(pb::GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;

    // A made-up token links nothing.
    let mut prober = other_client(&mesh, "prober")?;
    let err = prober
        .link_subject(pb::LinkSubjectRequest {
            session_token: "x".repeat(43),
        })
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn services_ask_whether_a_client_is_linked_and_clients_may_not() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let ask = |client: &str| pb::CheckRelationshipRequest {
        subject_id: subject.clone(),
        client: client.to_owned(),
    };

    let mut consent = client(&mesh, Caller::Service("consent".into()))?;
    assert!(
        consent
            .check_relationship(ask("client:testkit"))
            .await?
            .into_inner()
            .related
    );
    assert!(
        !consent
            .check_relationship(ask("client:stranger"))
            .await?
            .into_inner()
            .related
    );
    let err = consent
        .check_relationship(ask("admin"))
        .await
        .expect_err("not a client");
    assert_eq!(err.code(), Code::InvalidArgument);

    let mut stranger = other_client(&mesh, "stranger")?;
    let err = stranger
        .check_relationship(ask("client:stranger"))
        .await
        .expect_err("services only");
    assert_eq!(err.code(), Code::PermissionDenied);
    Ok(())
}

#[tokio::test]
async fn erasure_forgets_which_clients_served_the_subject() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    mesh.identity()
        .delete_account(pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: pb::DeletionReason::NoLongerNeeded as i32,
            request_id: String::new(),
        })
        .await?;
    let db = mesh.connect_db(pdm_identity::NAME).await?;
    assert_eq!(
        pdm_testkit::assert::rows_where(&db, "subject_links", "subject_id", &subject).await,
        0,
        "the subject's links were kept"
    );
    Ok(())
}
