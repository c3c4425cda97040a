//! A request that arrives by post or by email is received when it arrives: the privacy
//! team records that time and the one-month deadline runs from it ("If you make a
//! request, we have one month to respond to you"; "please contact us
//! privacy@digitalapicraft.com"). Nobody else may backdate a request.

mod support;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use pdm_proto::rights::v1::{self as pb, Regime, RequestKind};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{
    assert::{field_violations, rows},
    fake::Person,
};
use pdm_tls::identity::Caller;
use support::{builder, operator, submit_as};

#[tokio::test]
async fn a_letter_to_the_privacy_team_counts_from_the_day_it_arrived() -> anyhow::Result<()> {
    let now = Utc
        .with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
        .single()
        .expect("date");
    let clock = ManualClock::new(now);
    let outbox = tempfile::tempdir()?;
    let mesh = builder(outbox.path()).clock(clock.clone()).start().await?;
    let subject = mesh.sign_up(&Person::new()).await?;
    let db = mesh.connect_db("rights").await?;
    let arrived = Utc
        .with_ymd_and_hms(2026, 11, 24, 9, 30, 0)
        .single()
        .expect("date");
    let letter = |received: chrono::DateTime<Utc>| pb::SubmitRequestRequest {
        kind: RequestKind::Access as i32,
        regime: Regime::UkGdpr as i32,
        subject_id: subject.clone(),
        credential: operator("DPO-LETTER-0042"),
        received_at: Some(timestamp(received)),
        ..Default::default()
    };

    let r = submit_as(&mesh, &Caller::Admin, letter(arrived)).await?;
    assert_eq!(r.received_at, Some(timestamp(arrived)));
    let due_day = NaiveDate::from_ymd_opt(2026, 12, 24).expect("date");
    assert_eq!(
        r.due_at,
        Some(timestamp(
            due_day
                .and_hms_micro_opt(23, 59, 59, 999_999)
                .expect("time")
                .and_utc()
        )),
        "one month from the day it arrived, not from the day it was entered"
    );
    let stored = rows(&db, "requests").await;

    // A company client cannot backdate; the future and more than a year ago are refused;
    // nothing is stored.
    let err = submit_as(
        &mesh,
        &Caller::Client("testkit".into()),
        pb::SubmitRequestRequest {
            credential: None,
            ..letter(arrived)
        },
    )
    .await
    .expect_err("a client backdating");
    let status = err.downcast_ref::<tonic::Status>().expect("a status");
    assert_eq!(field_violations(status), ["received_at"]);
    for (when, why) in [
        (now + Duration::hours(2), "in the future"),
        (now - Duration::days(400), "over a year ago"),
    ] {
        let err = submit_as(&mesh, &Caller::Admin, letter(when))
            .await
            .expect_err(why);
        let status = err.downcast_ref::<tonic::Status>().expect("a status");
        assert_eq!(field_violations(status), ["received_at"], "{why}");
    }
    assert_eq!(rows(&db, "requests").await, stored);
    Ok(())
}
