//! Birth dates added or corrected after sign-up, and the under-18 rule on the subject's
//! local date (issue 15; policy, "Our policy towards the Children": "DigitalAPICraft does
//! not knowingly collect any personally identifiable information from children under the
//! age of 18"; "GDPR Data Protection Rights: the right to rectification").

use chrono::{DateTime, Duration, TimeZone, Utc};
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::Region,
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
};
use pdm_runtime::ManualClock;
use pdm_testkit::{
    TestMesh,
    assert::{contains, field_violations, raw_storage},
    fake::Person,
};
use pdm_tls::identity::Caller;
use tonic::{Code, transport::Channel};

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a real time")
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

fn set_birth_date(subject: &str, birth: &str) -> pb::UpdateProfileRequest {
    pb::UpdateProfileRequest {
        subject_id: subject.to_owned(),
        birth_date: Some(birth.to_owned()),
        ..Default::default()
    }
}

/// A person in `region` who gave no birth date at sign-up.
fn without_birth_date(region: Region) -> Person {
    Person {
        birth_date: String::new(),
        region,
        ..Person::new()
    }
}

#[tokio::test]
async fn children_a_birth_date_given_later_is_validated_and_the_under_18_rule_applies()
-> anyhow::Result<()> {
    let clock = ManualClock::new(at(2026, 11, 29, 12, 0));
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await?;
    let mut identity = mesh.identity();
    let person = without_birth_date(Region::Uk);
    let subject = mesh.sign_up(&person).await?;
    assert_eq!(account(&mut identity, &subject).await?.birth_date, "");

    // Added later, through the rectification path.
    let added = identity
        .update_profile(set_birth_date(&subject, "1990-04-12"))
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(added.birth_date, "1990-04-12");
    // Corrected.
    identity
        .update_profile(set_birth_date(&subject, "1991-05-13"))
        .await?;
    assert_eq!(
        account(&mut identity, &subject).await?.birth_date,
        "1991-05-13"
    );

    // A correction that makes the account holder a child is refused; nothing changes,
    // not even the other fields of the same update.
    let err = identity
        .update_profile(pb::UpdateProfileRequest {
            last_name: Some("Byron".into()),
            ..set_birth_date(&subject, "2008-11-30") // 18 tomorrow
        })
        .await
        .expect_err("under 18");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let unchanged = account(&mut identity, &subject).await?;
    assert_eq!(unchanged.birth_date, "1991-05-13");
    assert_eq!(unchanged.last_name, person.last_name);
    // 18 today is old enough.
    identity
        .update_profile(set_birth_date(&subject, "2008-11-29"))
        .await?;

    // Bad dates are INVALID_ARGUMENT on the field; a birth date cannot be removed.
    for bad in ["", "2008-02-30", "2026-12-01", "29/11/1990", "1850-01-01"] {
        let err = identity
            .update_profile(set_birth_date(&subject, bad))
            .await
            .expect_err(bad);
        assert_eq!(field_violations(&err), ["birth_date"], "{bad:?}");
    }
    assert_eq!(
        account(&mut identity, &subject).await?.birth_date,
        "2008-11-29"
    );

    // Sealed at rest like every profile field, and never logged.
    let raw = raw_storage(&mesh, "identity").await;
    for date in ["1990-04-12", "1991-05-13", "2008-11-29", "2008-11-30"] {
        assert!(
            !contains(&raw, date),
            "birth date {date} stored in plaintext"
        );
        assert!(
            !mesh.logs().contents().contains(date),
            "birth date {date} logged"
        );
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn children_age_counts_on_the_subjects_local_date_not_on_the_utc_date() -> anyhow::Result<()>
{
    // 23:30 UTC on 28 November 2026: already the 29th in Zurich, still the 28th in London
    // and Los Angeles. Someone born on 29 November 2008 is 18 only in Switzerland.
    let clock = ManualClock::new(at(2026, 11, 28, 23, 30));
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await?;
    let mut identity = mesh.identity();
    let born = "2008-11-29";

    let swiss = Person {
        birth_date: born.into(),
        region: Region::Ch,
        ..Person::new()
    };
    identity.create_account(swiss.sign_up()).await?;
    let british = Person {
        birth_date: born.into(),
        ..Person::new()
    };
    let err = identity
        .create_account(british.sign_up())
        .await
        .expect_err("still 17 in London");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // The same rule at rectification: a birth date added later in the UK...
    let uk = mesh.sign_up(&without_birth_date(Region::Uk)).await?;
    let err = identity
        .update_profile(set_birth_date(&uk, born))
        .await
        .expect_err("still 17 in London");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // ...is accepted from midnight in London.
    clock.set(at(2026, 11, 29, 0, 0));
    identity.update_profile(set_birth_date(&uk, born)).await?;

    // Moving to California, where it is still the 28th until 08:00 UTC, is refused: the
    // rule is checked again on the new region's date.
    let err = identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: uk.clone(),
            region: Some(Region::UsCa as i32),
            ..Default::default()
        })
        .await
        .expect_err("still 17 in Los Angeles");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(account(&mut identity, &uk).await?.region, Region::Uk as i32);
    clock.advance(Duration::hours(8));
    identity
        .update_profile(pb::UpdateProfileRequest {
            subject_id: uk.clone(),
            region: Some(Region::UsCa as i32),
            ..Default::default()
        })
        .await?;
    assert_eq!(
        account(&mut identity, &uk).await?.region,
        Region::UsCa as i32
    );

    // A region of many time zones waits for its last one: in the EEA that is the
    // French Caribbean (UTC-4), so 18 from 04:00 UTC.
    clock.set(at(2026, 11, 29, 3, 59));
    let eea = mesh.sign_up(&without_birth_date(Region::Eea)).await?;
    let err = identity
        .update_profile(set_birth_date(&eea, born))
        .await
        .expect_err("still 17 in Guadeloupe");
    assert_eq!(err.code(), Code::FailedPrecondition);
    clock.set(at(2026, 11, 29, 4, 0));
    identity.update_profile(set_birth_date(&eea, born)).await?;
    Ok(())
}

#[tokio::test]
async fn children_another_client_cannot_add_a_birth_date_to_a_subject_it_does_not_serve()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let subject = mesh.sign_up(&without_birth_date(Region::Uk)).await?;
    let mut other = IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &Caller::Client("partner".into()))?,
    );
    let err = other
        .update_profile(set_birth_date(&subject, "1990-04-12"))
        .await
        .expect_err("not linked");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        account(&mut mesh.identity(), &subject).await?.birth_date,
        ""
    );
    Ok(())
}
