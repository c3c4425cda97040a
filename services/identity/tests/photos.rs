//! Profile photos ("Information you provide to us": "You also have the option to add a
//! profile photo"): JPEG, PNG or WebP recognised by content, at most 2 MiB.

use pdm_identity::Identity;
use pdm_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::{self, Person},
};
use tonic::{Code, transport::Channel};

const TWO_MIB: usize = 2 * 1024 * 1024;

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

fn set(subject_id: &str, photo: Vec<u8>) -> pb::SetProfilePhotoRequest {
    pb::SetProfilePhotoRequest {
        subject_id: subject_id.to_owned(),
        photo,
    }
}

fn get(subject_id: &str) -> pb::GetProfilePhotoRequest {
    pb::GetProfilePhotoRequest {
        subject_id: subject_id.to_owned(),
    }
}

async fn has_photo(
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
    Ok(account.has_photo)
}

#[tokio::test]
async fn jpeg_png_and_webp_are_recognised_by_their_content() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    for (photo, mime) in [
        (fake::jpeg(4096), "image/jpeg"),
        (fake::png(), "image/png"),
        (fake::webp(), "image/webp"),
    ] {
        let stored = identity
            .set_profile_photo(set(&subject, photo.clone()))
            .await?
            .into_inner();
        assert_eq!(stored.content_type, mime);
        assert_eq!(stored.size_bytes, u64::try_from(photo.len())?);
        let got = identity
            .get_profile_photo(get(&subject))
            .await?
            .into_inner();
        assert_eq!(got.content_type, mime);
        assert_eq!(
            got.photo, photo,
            "the {mime} photo reads back byte for byte"
        );
    }

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn has_photo_flips_and_a_new_photo_replaces_the_old_one() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    assert!(!has_photo(&mut identity, &subject).await?);
    let err = identity
        .get_profile_photo(get(&subject))
        .await
        .expect_err("no photo yet");
    assert_eq!(err.code(), Code::NotFound);

    identity
        .set_profile_photo(set(&subject, fake::png()))
        .await?;
    assert!(has_photo(&mut identity, &subject).await?);

    let replacement = fake::jpeg(10_000);
    identity
        .set_profile_photo(set(&subject, replacement.clone()))
        .await?;
    let got = identity
        .get_profile_photo(get(&subject))
        .await?
        .into_inner();
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!(got.photo, replacement);
    assert!(has_photo(&mut identity, &subject).await?);
    let db = mesh.connect_db("identity").await?;
    assert_eq!(
        rows(&db, "profile_photos").await,
        1,
        "the photo was replaced, not added"
    );

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn other_file_types_are_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let refused: [(&str, Vec<u8>); 6] = [
        (
            "gif",
            b"GIF89a\x01\0\x01\0\x80\0\0\xff\xff\xff\0\0\0!\xf9\x04".to_vec(),
        ),
        (
            "svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>"#.to_vec(),
        ),
        ("text", b"just some words, not a picture".to_vec()),
        ("wav", b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0".to_vec()),
        ("png without its signature", fake::png()[1..].to_vec()),
        ("nothing", Vec::new()),
    ];
    for (kind, photo) in refused {
        let err = identity
            .set_profile_photo(set(&subject, photo))
            .await
            .expect_err(kind);
        assert_eq!(field_violations(&err), ["photo"], "{kind}");
    }
    let err = identity
        .set_profile_photo(set("not-a-subject", b"GIF89a".to_vec()))
        .await
        .expect_err("both bad");
    assert_eq!(field_violations(&err), ["subject_id", "photo"]);

    let db = mesh.connect_db("identity").await?;

    assert_eq!(rows(&db, "profile_photos").await, 0);
    assert!(!has_photo(&mut identity, &subject).await?);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn two_mib_is_accepted_and_one_byte_more_is_refused() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let largest = fake::jpeg(TWO_MIB);
    let stored = identity
        .set_profile_photo(set(&subject, largest.clone()))
        .await?
        .into_inner();
    assert_eq!(stored.size_bytes, 2_097_152);

    let err = identity
        .set_profile_photo(set(&subject, fake::jpeg(TWO_MIB + 1)))
        .await
        .expect_err("too big");
    assert_eq!(field_violations(&err), ["photo"]);
    let got = identity
        .get_profile_photo(get(&subject))
        .await?
        .into_inner();
    assert_eq!(
        got.photo, largest,
        "the refused photo did not replace the stored one"
    );

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn photos_of_unknown_or_malformed_subjects() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let unknown = uuid::Uuid::now_v7().to_string();

    let err = identity
        .set_profile_photo(set(&unknown, fake::png()))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .get_profile_photo(get(&unknown))
        .await
        .expect_err("unknown subject");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .get_profile_photo(get("42"))
        .await
        .expect_err("malformed subject");
    assert_eq!(field_violations(&err), ["subject_id"]);

    let db = mesh.connect_db("identity").await?;

    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows(&db, "profile_photos").await, 0);
    assert_eq!(rows(&keys, "subject_keys").await, 0);
    Ok(())
}
