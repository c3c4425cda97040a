//! Bad batches are refused whole with INVALID_ARGUMENT and a field violation per bad field
//! (limits: 1,000 events and 1 MiB per batch, valid IPs and http(s) URLs, known kinds,
//! event times at most 30 days old and 5 minutes ahead); nothing of them is stored, and the
//! batch id stays free for the corrected batch.

mod support;

use chrono::Duration;
use pdm_proto::telemetry::v1::{self as pb, ConnectionType, EventKind};
use pdm_testkit::{
    Mesh,
    assert::{field_violations, rows},
};
use support::{clock, consenting, event, events, ingest, mesh, now, secrets};

async fn nothing_stored(mesh: &Mesh) -> anyhow::Result<()> {
    let db = mesh.connect_db("telemetry").await?;
    for table in ["events", "batches", "aggregates"] {
        assert_eq!(rows(&db, table).await, 0, "{table} must stay empty");
    }
    Ok(())
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_of_the_batch_is_stored() -> anyhow::Result<()> {
    let clock = clock();
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
    let clock = clock();
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
        ..event("", at)
    };
    let err = ingest(&mut client, "too-big", vec![long_link.clone(); 600])
        .await
        .expect_err("over 1 MiB");
    assert_eq!(field_violations(&err), ["events"]);
    nothing_stored(&mesh).await?;

    // At the limits: 1,000 events, and just under 1 MiB.
    assert_eq!(
        ingest(&mut client, "max-events", events("", at, 1000))
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
