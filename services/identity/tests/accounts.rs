//! Accounts: sign-up, profile, rectification ("Information you provide to us", "GDPR Data
//! Protection Rights: the right to rectification", "Our policy towards the Children").

use chrono::{Datelike, TimeZone, Utc};
use pdm_identity::Identity;
use pdm_proto::{common::v1::Region, identity::v1 as pb};
use pdm_runtime::ManualClock;
use pdm_testkit::{
    TestMesh,
    assert::{field_violations, rows},
    fake::Person,
};
use tonic::Code;

#[tokio::test]
async fn create_account_returns_a_uuidv7_and_the_profile_reads_back() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();

    let mut request = person.sign_up();
    request.email = format!("  {}  ", person.email.to_uppercase());
    request.phone = "+44 7700 900 123".into();
    let account = identity
        .create_account(request)
        .await?
        .into_inner()
        .account
        .expect("account");
    let id = uuid::Uuid::parse_str(&account.subject_id)?;
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(
        account.email, person.email,
        "email is trimmed and lower-cased"
    );
    assert_eq!(account.phone, "+447700900123");
    assert_eq!(account.region, Region::Uk as i32);

    let got = identity
        .get_account(pb::GetAccountRequest {
            subject_id: account.subject_id.clone(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(got.first_name, person.first_name);
    assert_eq!(got.last_name, person.last_name);
    assert_eq!(got.birth_date, person.birth_date);
    assert!(!got.has_photo && !got.restricted);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn every_bad_field_is_reported_and_nothing_is_stored() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let err = identity
        .create_account(pb::CreateAccountRequest {
            first_name: " ".into(),
            last_name: "L".repeat(101),
            email: "not-an-email".into(),
            phone: "07700 900123".into(),
            region: 42,
            birth_date: "31/12/1990".into(),
            password: "short".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        field_violations(&err),
        [
            "first_name",
            "last_name",
            "email",
            "phone",
            "region",
            "birth_date",
            "password"
        ]
    );
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 0);
    assert_eq!(rows(&keys, "subject_keys").await, 0);
    Ok(())
}

#[tokio::test]
async fn a_card_number_in_any_text_field_is_refused() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let mut request = Person::new().sign_up();
    request.last_name = "Visa 4111-1111-1111-1111".into();
    let err = identity
        .create_account(request)
        .await
        .expect_err("card number");
    assert_eq!(field_violations(&err), ["last_name"]);
    assert_eq!(
        rows(&mesh.connect_db("identity").await?, "accounts").await,
        0
    );
    Ok(())
}

#[tokio::test]
async fn a_duplicate_email_is_refused_whatever_its_case() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    identity.create_account(person.sign_up()).await?;

    let mut twin = Person::new().sign_up();
    twin.email = person.email.to_uppercase();
    let err = identity.create_account(twin).await.expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().starts_with("email"), "{}", err.message());
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 1);
    assert_eq!(
        rows(&keys, "subject_keys").await,
        1,
        "the refused sign-up left no key behind"
    );
    Ok(())
}

#[tokio::test]
async fn children_under_18_cannot_open_an_account_and_nothing_is_stored() -> anyhow::Result<()> {
    // Policy, "Our policy towards the Children": no personal data from anyone under 18.
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("date"),
    );
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await?;
    let mut identity = mesh.identity();
    let today = clock.now_date();

    let mut child = Person::new().sign_up();
    child.birth_date = format!("{}-11-30", today.year() - 18); // 18 tomorrow
    let err = identity.create_account(child).await.expect_err("under 18");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows(&db, "accounts").await, 0);
    assert_eq!(rows(&keys, "subject_keys").await, 0);

    let mut adult = Person::new().sign_up();
    adult.birth_date = format!("{}-11-29", today.year() - 18); // 18 today
    identity.create_account(adult).await?;
    assert_eq!(rows(&db, "accounts").await, 1);
    Ok(())
}

#[tokio::test]
async fn update_profile_rectifies_fields_and_rechecks_email_uniqueness() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let (ada, bob) = (Person::new(), Person::new());
    let a = identity
        .create_account(ada.sign_up())
        .await?
        .into_inner()
        .account
        .expect("a");
    identity.create_account(bob.sign_up()).await?;

    let corrected = Person::new();
    let updated = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: a.subject_id.clone(),
            last_name: Some(corrected.last_name.clone()),
            phone: Some(String::new()),
            region: Some(Region::Eea as i32),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(updated.last_name, corrected.last_name);
    assert_eq!(updated.first_name, ada.first_name, "untouched fields stay");
    assert_eq!(updated.phone, "", "an empty phone removes it");
    assert_eq!(updated.region, Region::Eea as i32);

    let err = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: a.subject_id.clone(),
            email: Some(bob.email.clone()),
            ..Default::default()
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);

    let err = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: a.subject_id.clone(),
            first_name: Some(String::new()),
            email: Some("nope".into()),
            region: Some(0),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(field_violations(&err), ["first_name", "email", "region"]);
    let unchanged = identity
        .get_account(pb::GetAccountRequest {
            subject_id: a.subject_id.clone(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        unchanged.first_name, ada.first_name,
        "a refused update changes nothing"
    );
    assert_eq!(unchanged.email, ada.email);

    let fresh_email = Person::new().email;
    let moved = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: a.subject_id.clone(),
            email: Some(fresh_email.clone()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(moved.email, fresh_email);

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&corrected.secrets());
    Ok(())
}

#[tokio::test]
async fn unknown_and_malformed_subjects() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let err = identity
        .get_account(pb::GetAccountRequest {
            subject_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = identity
        .get_account(pb::GetAccountRequest {
            subject_id: "42".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["subject_id"]);
    Ok(())
}
