//! Bad batches are refused whole with INVALID_ARGUMENT and a field violation per bad field
//! (limits: 1,000 events and 1 MiB per batch, valid IPs and http(s) URLs, known kinds,
//! event times at most 30 days old and 5 minutes ahead); nothing of them is stored, and the
//! batch id stays free for the corrected batch.

mod support;

use chrono::Duration;
use pdm_proto::{
    subject::v1::RestrictSubjectRequest,
    telemetry::v1::{self as pb, ConnectionType, EventKind},
};
use pdm_testkit::{
    Mesh,
    assert::{contains, field_violations, raw_storage, rows},
    start_clock,
};
use support::{
    consenting, crash, event, events, ingest, mesh, necessary, now, report_crash, secrets,
};

/// A card number as people type it: plain, in groups, and after another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

/// The card as it would be found in storage or logs.
const CARD_FORMS: [(&str, &str); 3] = [
    ("card number", "4111111111111111"),
    ("card number", "4111 1111 1111 1111"),
    ("card number", "4111-1111-1111-1111"),
];

/// A field, by proto path, and how to set it in a `T`.
type Field<T> = (&'static str, fn(&mut T, String));

/// The free-text fields of an event.
const EVENT_FIELDS: [Field<pb::Event>; 3] = [
    ("feature", |e, s| e.feature = s),
    ("screen", |e, s| e.screen = s),
    ("link_url", |e, s| e.link_url = s),
];

/// The free-text fields of a device context (events' and crash reports'). The device id
/// is not among them: only its keyed hash is kept (see the IMEI test below).
const DEVICE_FIELDS: [Field<pb::DeviceContext>; 9] = [
    ("locale", |d, s| d.locale = s),
    ("time_zone", |d, s| d.time_zone = s),
    ("os_name", |d, s| d.os_name = s),
    ("os_version", |d, s| d.os_version = s),
    ("browser_name", |d, s| d.browser_name = s),
    ("browser_version", |d, s| d.browser_version = s),
    ("app_version", |d, s| d.app_version = s),
    ("referrer_url", |d, s| d.referrer_url = s),
    ("exit_url", |d, s| d.exit_url = s),
];

/// The values tried in a field: each card as typed and, in a URL field, also inside an
/// otherwise valid URL (its spaces escaped, as a browser sends them).
fn values(field: &str) -> Vec<String> {
    let mut out: Vec<String> = CARDS.iter().map(|c| (*c).to_owned()).collect();
    if field.ends_with("_url") {
        out.extend(
            CARDS
                .iter()
                .map(|c| format!("https://shop.example/checkout/{}", c.replace(' ', "%20"))),
        );
    }
    out
}

async fn nothing_stored(mesh: &Mesh) -> anyhow::Result<()> {
    let db = mesh.connect_db("telemetry").await?;
    for table in ["events", "batches", "aggregates"] {
        assert_eq!(rows(&db, table).await, 0, "{table} must stay empty");
    }
    Ok(())
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_of_the_batch_is_stored() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let good = event(&subject, at);
    let with = |change: &dyn Fn(&mut pb::Event)| {
        let mut e = good.clone();
        change(&mut e);
        e
    };

    let batch = vec![
        with(&|e| e.device.as_mut().expect("device").ip_address = "999.1.1.1".into()),
        with(&|e| {
            e.kind = EventKind::LinkClicked as i32;
            e.link_url = "javascript:alert(1)".into();
        }),
        with(&|e| e.kind = 42),
        with(&|e| e.kind = EventKind::Unspecified as i32),
        with(&|e| {
            e.occurred_at = Some(pdm_runtime::convert::timestamp(at + Duration::minutes(10)))
        }),
        with(&|e| e.occurred_at = Some(pdm_runtime::convert::timestamp(at - Duration::days(31)))),
        with(&|e| e.occurred_at = None),
        with(&|e| e.kind = EventKind::Interaction as i32),
        with(&|e| {
            e.kind = EventKind::Interaction as i32;
            e.subject_id = String::new();
            e.peer_subject_id = uuid::Uuid::now_v7().to_string();
        }),
        with(&|e| e.subject_id = "nope".into()),
        with(&|e| e.feature = String::new()),
        with(&|e| {
            e.kind = EventKind::PageView as i32;
            e.screen = "s".repeat(257);
        }),
        with(&|e| {
            let device = e.device.as_mut().expect("device");
            device.connection = 99;
            device.referrer_url = "not a url".into();
            device.exit_url = format!("https://example.com/{}", "a".repeat(2048));
            device.locale = "en\u{7}GB".into();
        }),
        good.clone(),
    ];
    let err = ingest(&mut client, "", batch.clone())
        .await
        .expect_err("bad batch");
    assert_eq!(
        field_violations(&err),
        [
            "batch_id",
            "events[0].device.ip_address",
            "events[1].link_url",
            "events[2].kind",
            "events[3].kind",
            "events[4].occurred_at",
            "events[5].occurred_at",
            "events[6].occurred_at",
            "events[7].peer_subject_id",
            "events[8].subject_id",
            "events[9].subject_id",
            "events[10].feature",
            "events[11].screen",
            "events[12].device.connection",
            "events[12].device.locale",
            "events[12].device.referrer_url",
            "events[12].device.exit_url",
        ]
    );
    let err = ingest(&mut client, &"b".repeat(129), vec![good.clone()])
        .await
        .expect_err("batch id too long");
    assert_eq!(field_violations(&err), ["batch_id"]);
    let err = ingest(&mut client, "has space", vec![good.clone()])
        .await
        .expect_err("batch id not printable ASCII");
    assert_eq!(field_violations(&err), ["batch_id"]);
    let err = ingest(&mut client, "empty", Vec::new())
        .await
        .expect_err("no events");
    assert_eq!(field_violations(&err), ["events"]);
    nothing_stored(&mesh).await?;

    // The refused batch id is still free: the corrected batch goes in.
    let r = ingest(&mut client, "fixed", vec![good.clone(); 2]).await?;
    assert_eq!((r.accepted, r.duplicate), (2, false));
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn oversize_batches_are_refused() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let err = ingest(&mut client, "too-many", events("", at, 1001))
        .await
        .expect_err("1001 events");
    assert_eq!(field_violations(&err), ["events"]);

    // About 1.2 MiB in 600 events that are each valid.
    let long_link = pb::Event {
        kind: EventKind::LinkClicked as i32,
        link_url: format!("https://example.com/{}", "p".repeat(2000)),
        device: Some(pb::DeviceContext {
            connection: ConnectionType::Cellular as i32,
            ..Default::default()
        }),
        ..necessary(event("", at))
    };
    let err = ingest(&mut client, "too-big", vec![long_link.clone(); 600])
        .await
        .expect_err("over 1 MiB");
    assert_eq!(field_violations(&err), ["events"]);
    nothing_stored(&mesh).await?;

    // At the limits: 1,000 events, and just under 1 MiB.
    assert_eq!(
        ingest(
            &mut client,
            "max-events",
            vec![necessary(event("", at)); 1000]
        )
        .await?
        .accepted,
        1000
    );
    assert_eq!(
        ingest(&mut client, "max-bytes", vec![long_link; 500])
            .await?
            .accepted,
        500
    );
    Ok(())
}

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let good = event(&subject, at);

    // A card anywhere in an event refuses the whole batch, naming the field.
    let mut tries: Vec<(String, pb::Event)> = Vec::new();
    for (path, set) in EVENT_FIELDS {
        for value in values(path) {
            let mut bad = good.clone();
            set(&mut bad, value);
            tries.push((path.to_owned(), bad));
        }
    }
    for (name, set) in DEVICE_FIELDS {
        for value in values(name) {
            let mut bad = good.clone();
            set(bad.device.get_or_insert_with(Default::default), value);
            tries.push((format!("device.{name}"), bad));
        }
    }
    for (path, bad) in tries {
        let what = format!("{path} in {bad:?}");
        let batch = vec![good.clone(), good.clone(), bad];
        let err = ingest(&mut client, "with-card", batch)
            .await
            .expect_err(&what);
        assert_eq!(
            field_violations(&err),
            [format!("events[2].{path}")],
            "{what}"
        );
    }
    for card in CARDS {
        let err = ingest(&mut client, card, vec![good.clone()])
            .await
            .expect_err(card);
        assert_eq!(field_violations(&err), ["batch_id"], "{card:?}");
    }
    // A crash report's device context is checked like an event's.
    for (name, set) in DEVICE_FIELDS {
        for value in values(name) {
            let mut report = crash(&subject, at, "boom", "");
            set(report.device.get_or_insert_with(Default::default), value);
            let what = format!("{name} in {:?}", report.device);
            let err = report_crash(&mut client, report).await.expect_err(&what);
            assert_eq!(field_violations(&err), [format!("device.{name}")], "{what}");
        }
    }
    // Rights' restriction: its request id goes into the access trail.
    for card in CARDS {
        let err = mesh
            .subject_data("telemetry")
            .restrict_subject(RestrictSubjectRequest {
                subject_id: subject.clone(),
                restricted: true,
                request_id: card.into(),
            })
            .await
            .expect_err(card);
        assert_eq!(field_violations(&err), ["request_id"], "{card:?}");
    }
    nothing_stored(&mesh).await?;
    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "crashes").await, 0);

    // The batch id is still free, the subject not restricted, and what is stored holds
    // no card.
    let r = ingest(&mut client, "with-card", vec![good.clone(); 2]).await?;
    assert_eq!((r.accepted, r.duplicate), (2, false));
    let raw = raw_storage(&mesh, "telemetry").await;
    for (_, form) in CARD_FORMS {
        assert!(!contains(&raw, form), "{form} found in raw storage");
    }
    mesh.logs().assert_clean(&secrets(&person, &CARD_FORMS));
    Ok(())
}

/// An IMEI is 15 digits with a Luhn check digit, as a card number; as a device id it is
/// accepted, because only its keyed hash is kept (policy: "device identifiers", minimised).
#[tokio::test]
async fn an_imei_as_device_id_is_accepted_and_only_its_hash_is_kept() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (_person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let imei = "490154203237518";
    let mut e = event(&subject, now(&clock));
    e.device = Some(support::device(imei));
    let answer = ingest(&mut client, "imei-batch", vec![e]).await?;
    assert_eq!(answer.accepted, 1);
    for file in mesh.sqlite_files("telemetry") {
        let bytes = std::fs::read(&file)?;
        assert!(
            !bytes.windows(imei.len()).any(|w| w == imei.as_bytes()),
            "the raw device id is in {}",
            file.display()
        );
    }
    Ok(())
}
