//! What other users see of a subject (issue 15; policy, "How we collect and use your
//! personal information": "we use the name and picture from your account to identify you
//! to other users of our services"): a display name and whether a photo exists, nothing
//! more; none for a restricted or erased subject.

use pdm_identity::Identity;
use pdm_proto::{
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1 as subject_pb,
};
use pdm_testkit::{
    TestMesh,
    fake::{self, Person},
};
use pdm_tls::identity::Caller;
use tonic::{Code, transport::Channel};

async fn public_profile(
    identity: &mut IdentityServiceClient<Channel>,
    subject: &str,
) -> Result<pb::GetPublicProfileResponse, tonic::Status> {
    identity
        .get_public_profile(pb::GetPublicProfileRequest {
            subject_id: subject.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn restrict(subject: &str, restricted: bool) -> subject_pb::RestrictSubjectRequest {
    subject_pb::RestrictSubjectRequest {
        subject_id: subject.to_owned(),
        restricted,
        request_id: format!("dsr-{}", uuid::Uuid::now_v7()),
    }
}

#[tokio::test]
async fn we_use_the_name_and_picture_from_your_account_to_identify_you_to_other_users()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    let profile = public_profile(&mut identity, &subject).await?;
    let initial = person.last_name.chars().next().unwrap_or_default();
    assert_eq!(profile.subject_id, subject);
    assert_eq!(
        profile.display_name,
        format!("{} {initial}.", person.first_name)
    );
    assert!(!profile.has_photo);
    // Only the name as shown: never the full last name, the email or the phone.
    let shown = format!("{profile:?}");
    for (what, secret) in [
        ("last name", person.last_name.as_str()),
        ("email", person.email.as_str()),
        ("phone", person.phone.as_str()),
    ] {
        assert!(
            !shown.contains(secret),
            "the public profile shows the {what}"
        );
    }

    // The picture: the public profile says it exists; GetProfilePhoto gives it.
    identity
        .set_profile_photo(pb::SetProfilePhotoRequest {
            subject_id: subject.clone(),
            photo: fake::png(),
        })
        .await?;
    assert!(public_profile(&mut identity, &subject).await?.has_photo);

    // The privacy team sees it too; a client not linked with the subject sees nothing.
    let mut admin = IdentityServiceClient::new(mesh.channel_as("identity", &Caller::Admin)?);
    assert_eq!(
        public_profile(&mut admin, &subject).await?.display_name,
        profile.display_name
    );
    let mut other =
        IdentityServiceClient::new(mesh.channel_as("identity", &Caller::Client("other".into()))?);
    let err = public_profile(&mut other, &subject)
        .await
        .expect_err("not linked");
    assert_eq!(err.code(), Code::NotFound);

    let err = public_profile(&mut identity, "not-a-subject-id")
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_restricted_subject_is_not_shown_to_other_users_until_the_restriction_is_lifted()
-> anyhow::Result<()> {
    // Art. 18 GDPR: showing the subject to others is processing beyond storage.
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    subject_data
        .restrict_subject(restrict(&subject, true))
        .await?;
    let err = public_profile(&mut identity, &subject)
        .await
        .expect_err("restricted");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("public profile"), "{err:?}");

    subject_data
        .restrict_subject(restrict(&subject, false))
        .await?;
    public_profile(&mut identity, &subject).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn an_erased_subject_has_no_public_profile() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    identity
        .delete_account(pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: pb::DeletionReason::NoLongerNeeded as i32,
            request_id: String::new(),
        })
        .await?;
    let err = public_profile(&mut identity, &subject)
        .await
        .expect_err("erased");
    assert_eq!(err.code(), Code::NotFound);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
