//! The organisation inferred from the email domain (issue 15; policy, "How we collect and
//! use your personal information": "We may use your email domain to understand which
//! organization or industry you're associated with"): derived at sign-up and at every
//! email change, kept sealed, answered only while the subject has not objected to the
//! purpose `organisation_insights` in the consent service.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    consent::v1::{RecordObjectionRequest, Source},
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1 as subject_pb,
};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{contains, raw_storage},
    fake::Person,
};
use tonic::{Code, transport::Channel};

/// Identity and consent; the test mesh lets identity call consent as the default policy
/// does (CheckProcessing).
async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .setting("security.allow_all", "client:testkit,identity")
        .start()
        .await
}

/// A person whose address is at `domain`.
fn person_at(domain: &str) -> Person {
    let mut person = Person::new();
    let local = person
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    person.email = format!("{local}@{domain}");
    person
}

async fn organisation(
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
) -> Result<String, tonic::Status> {
    identity
        .get_organisation(pb::GetOrganisationRequest {
            subject_id: subject.to_owned(),
        })
        .await
        .map(|r| r.into_inner().organisation)
}

async fn change_email(
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
    email: String,
) -> anyhow::Result<()> {
    identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: subject.to_owned(),
            email: Some(email),
            ..Default::default()
        })
        .await?;
    Ok(())
}

async fn object(mesh: &Mesh, subject: &str, withdraw: bool) -> anyhow::Result<()> {
    mesh.consent()
        .record_objection(RecordObjectionRequest {
            subject_id: subject.to_owned(),
            purpose: "organisation_insights".into(),
            withdraw,
            source: Source::WebForm as i32,
            actor: "privacy-settings".into(),
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn we_may_use_your_email_domain_to_understand_which_organization_you_are_associated_with()
-> anyhow::Result<()> {
    let mesh = mesh().await?;
    let mut identity = mesh.identity();
    let person = person_at("mail.acmewidgets.co.uk");
    let subject = mesh.sign_up(&person).await?;
    assert_eq!(
        organisation(&mut identity, &subject).await?,
        "acmewidgets.co.uk"
    );
    // Sealed at rest like the email it comes from.
    assert!(
        !contains(&raw_storage(&mesh, "identity").await, "acmewidgets"),
        "the organisation is stored in the clear"
    );

    // A free-mail address names no organisation; a new work address names its own.
    let local = person
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    change_email(&mut identity, &subject, format!("{local}@gmail.com")).await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "");
    change_email(&mut identity, &subject, format!("{local}@eu.globex.com")).await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "globex.com");

    let err = organisation(&mut identity, &pdm_runtime::SubjectId::new_v7().to_string())
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_objection_to_organisation_insights_is_honoured() -> anyhow::Result<()> {
    // The inference rests on legitimate interests: the subject may object (Art. 21 GDPR),
    // and the answer is empty from the moment the objection is recorded in consent.
    let mesh = mesh().await?;
    let mut identity = mesh.identity();
    let person = person_at("initech.com");
    let subject = mesh.sign_up(&person).await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "initech.com");

    object(&mesh, &subject, false).await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "");
    // The rest of the account is untouched.
    let account = identity
        .get_account(pb::GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.email, person.email);

    object(&mesh, &subject, true).await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "initech.com");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_restricted_subject_gets_no_organisation_inferred() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let mut identity = mesh.identity();
    let person = person_at("hooli.com.au");
    let subject = mesh.sign_up(&person).await?;
    mesh.subject_data("identity")
        .restrict_subject(subject_pb::RestrictSubjectRequest {
            subject_id: subject.clone(),
            restricted: true,
            request_id: format!("dsr-{}", uuid::Uuid::now_v7()),
        })
        .await?;
    assert_eq!(organisation(&mut identity, &subject).await?, "");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn without_an_answer_from_consent_the_organisation_is_not_given() -> anyhow::Result<()> {
    let mut mesh = mesh().await?;
    let person = person_at("umbrella.co.jp");
    let subject = mesh.sign_up(&person).await?;
    mesh.stop("consent").await?;
    let err = organisation(&mut mesh.identity(), &subject)
        .await
        .expect_err("consent is down");
    assert_eq!(err.code(), Code::Unavailable);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
