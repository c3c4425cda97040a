//! Tracking technologies as purposes ("Cookies and Other Tracking Tools": "we use cookies
//! and other tracking technologies like ... device identifiers"; "Our Cookie Policy ...
//! gives you options to control them"): a logged-out visitor's events are stored only
//! under the choice recorded for their device, per category; strictly necessary tracking
//! needs none; Global Privacy Control turns advertising off.

mod support;

use chrono::Duration;
use pdm_proto::telemetry::v1::{self as pb, DropReason, TrackingCategory};
use pdm_testkit::assert::{contains, field_violations, raw_storage, rows};
use pdm_testkit::start_clock;
use support::{BANNER_HASH, RAW_IP, choose, dropped, ingest, mesh, necessary, now, visitor};
use tonic::Code;

const DEVICE: &str = "visitor-device-7f3a91";

#[tokio::test]
async fn cookies_and_other_tracking_tools_our_cookie_policy_gives_you_options_to_control_them()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let all = |device: &str| {
        vec![
            visitor(device, TrackingCategory::StrictlyNecessary, at),
            visitor(device, TrackingCategory::Analytics, at),
            visitor(device, TrackingCategory::Unspecified, at),
            visitor(device, TrackingCategory::Advertising, at),
        ]
    };

    // Never asked: only strictly necessary tracking.
    let r = ingest(&mut client, "t-1", all(DEVICE)).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::NoTrackingConsent)),
        (1, 3),
        "{r:?}"
    );
    // No device identifier: no choice can apply.
    let mut nameless = visitor("", TrackingCategory::Analytics, at);
    nameless.device = None;
    let r = ingest(
        &mut client,
        "t-2",
        vec![nameless.clone(), necessary(nameless)],
    )
    .await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::NoTrackingConsent)),
        (1, 1)
    );

    // Analytics only.
    let choice = choose(&mut client, DEVICE, (true, false, false)).await?;
    assert!(choice.analytics && !choice.advertising && !choice.advertising_effective);
    let r = ingest(&mut client, "t-3", all(DEVICE)).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::NoTrackingConsent)),
        (3, 1)
    );
    // Another device's choice does not count for this one.
    let r = ingest(&mut client, "t-4", all("another-device")).await?;
    assert_eq!(r.accepted, 1);

    // Everything: advertising too, until a GPC signal comes with an event.
    choose(&mut client, DEVICE, (true, true, false)).await?;
    let r = ingest(&mut client, "t-5", all(DEVICE)).await?;
    assert_eq!(r.accepted, 4);
    let mut signalled = all(DEVICE);
    for e in &mut signalled {
        if let Some(d) = e.device.as_mut() {
            d.global_privacy_control = true;
        }
    }
    let r = ingest(&mut client, "t-6", signalled).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::GlobalPrivacyControl)),
        (3, 1)
    );

    // Withdrawn: the next batch is refused.
    choose(&mut client, DEVICE, (false, false, false)).await?;
    let r = ingest(&mut client, "t-7", all(DEVICE)).await?;
    assert_eq!(r.accepted, 1);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "events").await, 1 + 1 + 3 + 1 + 4 + 3 + 1);
    let raw = raw_storage(&mesh, "telemetry").await;
    assert!(!contains(&raw, DEVICE), "the raw device id is never stored");
    assert!(!contains(&raw, RAW_IP));
    mesh.logs()
        .assert_clean(&[("device id", DEVICE), ("raw IP address", RAW_IP)]);
    Ok(())
}

#[tokio::test]
async fn global_privacy_control_turns_advertising_off_whatever_the_choice() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let choice = choose(&mut client, DEVICE, (true, true, true)).await?;
    assert!(choice.advertising && choice.global_privacy_control);
    assert!(!choice.advertising_effective, "{choice:?}");
    let r = ingest(
        &mut client,
        "gpc-1",
        vec![
            visitor(DEVICE, TrackingCategory::Advertising, at),
            visitor(DEVICE, TrackingCategory::Analytics, at),
        ],
    )
    .await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::GlobalPrivacyControl)),
        (1, 1)
    );
    Ok(())
}

#[tokio::test]
async fn a_tracking_choice_is_read_back_and_lapses_after_thirteen_months() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let get = |device: &str| pb::GetTrackingChoiceRequest {
        device_id: device.to_owned(),
    };
    let none = client.get_tracking_choice(get(DEVICE)).await?.into_inner();
    assert!(!none.found && none.choice.is_none());

    for _ in 0..25 {
        choose(&mut client, DEVICE, (false, true, false)).await?;
    }
    choose(&mut client, DEVICE, (true, false, false)).await?;
    let got = client.get_tracking_choice(get(DEVICE)).await?.into_inner();
    let choice = got.choice.unwrap_or_default();
    assert!(
        got.found && choice.analytics && !choice.advertising,
        "the latest counts"
    );
    assert_eq!(choice.text_hash, BANNER_HASH);
    assert_eq!(choice.policy_version, "cookies-2024-06");
    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(
        rows(&db, "tracking_choices").await,
        20,
        "at most 20 choices are kept per device"
    );

    // Thirteen months (395 days) later the choice lapses: the visitor is asked again and
    // the rows go.
    clock.advance(Duration::days(396));
    let got = client.get_tracking_choice(get(DEVICE)).await?.into_inner();
    assert!(!got.found);
    let r = ingest(
        &mut client,
        "lapsed",
        vec![visitor(DEVICE, TrackingCategory::Analytics, now(&clock))],
    )
    .await?;
    assert_eq!(dropped(&r, DropReason::NoTrackingConsent), 1);
    pdm_testkit::eventually("lapsed choices are deleted", support::WAIT, || {
        let db = db.clone();
        async move { Ok(rows(&db, "tracking_choices").await == 0) }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_tracking_choices_are_refused_field_by_field_and_nothing_is_stored()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let err = client
        .record_tracking_choice(pb::RecordTrackingChoiceRequest {
            device_id: "d".repeat(257),
            analytics: true,
            advertising: true,
            global_privacy_control: false,
            policy_version: "v\n1".into(),
            text_hash: "not-a-hash".into(),
        })
        .await
        .expect_err("every field is wrong");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&err),
        ["device_id", "policy_version", "text_hash"]
    );
    let err = client
        .record_tracking_choice(pb::RecordTrackingChoiceRequest {
            policy_version: "4111 1111 1111 1111".into(),
            text_hash: BANNER_HASH.into(),
            ..Default::default()
        })
        .await
        .expect_err("no device, a card number as the version");
    assert_eq!(field_violations(&err), ["device_id", "policy_version"]);
    let err = client
        .get_tracking_choice(pb::GetTrackingChoiceRequest {
            device_id: "  ".into(),
        })
        .await
        .expect_err("no device");
    assert_eq!(field_violations(&err), ["device_id"]);
    // An unknown category on an event is a field violation too.
    let mut e = visitor(DEVICE, TrackingCategory::Analytics, now(&clock));
    e.tracking = 42;
    let err = ingest(&mut client, "bad-category", vec![e])
        .await
        .expect_err("unknown category");
    assert_eq!(field_violations(&err), ["events[0].tracking"]);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "tracking_choices").await, 0);
    assert_eq!(rows(&db, "events").await, 0);
    Ok(())
}
