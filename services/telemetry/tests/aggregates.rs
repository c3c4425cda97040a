//! Non-identifying aggregates ("For Research and Improving Our Services": "aggregate
//! information ... You cannot be identified from aggregate information"): a bucket is shown
//! only with k distinct people behind it (k at least 5), small buckets go after their
//! window, and published counts outlive a subject's erasure without revealing them.

mod support;

use chrono::Duration;
use pdm_proto::telemetry::v1::{self as pb, Dimension, TrackingCategory};
use pdm_testkit::{
    Mesh,
    assert::{field_violations, rows, rows_where},
    eventually,
    fake::Person,
    start_clock,
};
use support::{
    Client, DAY, WAIT, consenting, erase, feature, ingest, mesh, mesh_with, necessary, now,
    secrets, visitor,
};

fn query(dimension: Dimension) -> pb::QueryAggregatesRequest {
    pb::QueryAggregatesRequest {
        dimension: dimension as i32,
        from_day: DAY.into(),
        to_day: DAY.into(),
    }
}

async fn aggregates(
    client: &mut Client,
    dimension: Dimension,
) -> anyhow::Result<pb::QueryAggregatesResponse> {
    Ok(client
        .query_aggregates(query(dimension))
        .await?
        .into_inner())
}

fn buckets(r: &pb::QueryAggregatesResponse) -> Vec<(&str, &str, u64)> {
    r.buckets
        .iter()
        .map(|b| (b.day.as_str(), b.value.as_str(), b.count))
        .collect()
}

/// `n` consenting people.
async fn people(mesh: &Mesh, n: usize) -> anyhow::Result<Vec<(Person, String)>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(consenting(mesh).await?);
    }
    Ok(all)
}

#[tokio::test]
async fn one_persons_six_events_make_no_bucket_aggregate_information_cannot_identify_you()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    // Six events, one person: a count of events would publish them; people are counted.
    let r = ingest(
        &mut client,
        "one-1",
        vec![feature(&subject, "report", at); 6],
    )
    .await?;
    assert_eq!(r.accepted, 6);
    // Logged out, one device: one person too, however many events.
    let device_events = vec![
        necessary(visitor(
            "one-device",
            TrackingCategory::StrictlyNecessary,
            at
        ));
        6
    ];
    assert_eq!(
        ingest(&mut client, "one-2", device_events).await?.accepted,
        6
    );
    // No subject and no device: nobody to count, never published.
    let mut nobody = necessary(feature("", "report", at));
    nobody.device = None;
    assert_eq!(
        ingest(&mut client, "one-3", vec![nobody; 6])
            .await?
            .accepted,
        6
    );

    for dimension in [Dimension::Feature, Dimension::EventKind, Dimension::Os] {
        let r = aggregates(&mut client, dimension).await?;
        assert!(r.buckets.is_empty(), "{dimension:?}: {r:?}");
        assert!(r.suppressed >= 1);
        assert_eq!(r.k_threshold, 5);
    }
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn five_distinct_people_make_a_bucket_that_their_erasure_does_not_reveal()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let five = people(&mesh, 5).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    for (i, (_, subject)) in five.iter().take(4).enumerate() {
        // Many events each: still four people.
        let r = ingest(
            &mut client,
            &format!("p-{i}"),
            vec![feature(subject, "report", at); 3],
        )
        .await?;
        assert_eq!(r.accepted, 3);
    }
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert!(r.buckets.is_empty(), "four people: withheld {r:?}");
    let db = mesh.connect_db("telemetry").await?;
    assert!(
        rows(&db, "aggregate_people").await > 0,
        "their hashes wait for the fifth"
    );

    ingest(&mut client, "p-4", vec![feature(&five[4].1, "report", at)]).await?;
    let before = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(
        buckets(&before),
        [(DAY, "report", 13)],
        "five people, thirteen events"
    );
    assert_eq!(before.suppressed, 0);
    assert_eq!(
        buckets(&aggregates(&mut client, Dimension::EventKind).await?),
        [(DAY, "FEATURE_USED", 13)]
    );
    assert_eq!(
        rows(&db, "aggregate_people").await,
        0,
        "a published bucket keeps nobody's hash"
    );

    // One of the five is erased: the bucket stays as it was (its count and its being shown
    // say nothing about them), and their events go.
    let (gone_person, gone) = &five[0];
    let receipt = erase(&mesh, "dsr-agg-1", gone).await?;
    assert!(receipt.key_destroyed);
    assert!(
        receipt
            .retained
            .iter()
            .any(|r| r.category == "telemetry.aggregate"),
        "the receipt says aggregates are kept, and why"
    );
    eventually("the erased subject's events are deleted", WAIT, || {
        let db = db.clone();
        let gone = gone.clone();
        async move { Ok(rows_where(&db, "events", "subject_id", &gone).await == 0) }
    })
    .await?;
    let after = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(after, before, "aggregates are not personal data and stay");
    for (person, _) in &five {
        mesh.logs().assert_clean(&secrets(person, &[]));
    }
    mesh.logs().assert_clean(&secrets(gone_person, &[]));
    Ok(())
}

#[tokio::test]
async fn concurrent_batches_count_each_person_once() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let eight = people(&mesh, 8).await?;
    let client = mesh.telemetry();
    let at = now(&clock);
    let mut racing = tokio::task::JoinSet::new();
    for (i, (_, subject)) in eight.iter().enumerate() {
        let mut client = client.clone();
        let batch = vec![feature(subject, "report", at); 2];
        racing.spawn(async move { ingest(&mut client, &format!("race-{i}"), batch).await });
    }
    while let Some(answer) = racing.join_next().await {
        assert_eq!(answer??.accepted, 2);
    }
    let mut client = mesh.telemetry();
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(buckets(&r), [(DAY, "report", 16)]);
    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "aggregate_people").await, 0);
    Ok(())
}

#[tokio::test]
async fn logged_out_devices_count_as_people_too() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let batch: Vec<_> = (0..5)
        .map(|i| {
            visitor(
                &format!("device-{i}"),
                TrackingCategory::StrictlyNecessary,
                at,
            )
        })
        .collect();
    ingest(&mut client, "devices-1", batch[..4].to_vec()).await?;
    assert!(
        aggregates(&mut client, Dimension::Feature)
            .await?
            .buckets
            .is_empty()
    );
    ingest(&mut client, "devices-2", batch[4..].to_vec()).await?;
    assert_eq!(
        buckets(&aggregates(&mut client, Dimension::Feature).await?),
        [(DAY, "export", 5)]
    );
    Ok(())
}

#[tokio::test]
async fn small_buckets_are_not_kept_beyond_their_window_and_forget_the_erased() -> anyhow::Result<()>
{
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let three = people(&mesh, 3).await?;
    let five = people(&mesh, 5).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    for (i, (_, subject)) in three.iter().enumerate() {
        ingest(
            &mut client,
            &format!("small-{i}"),
            vec![feature(subject, "rare", at)],
        )
        .await?;
    }
    for (i, (_, subject)) in five.iter().enumerate() {
        ingest(
            &mut client,
            &format!("big-{i}"),
            vec![feature(subject, "common", at)],
        )
        .await?;
    }
    let db = mesh.connect_db("telemetry").await?;
    // "rare" waits with three people (its feature bucket; event kind and OS reached five).
    assert_eq!(
        rows_where(&db, "aggregate_people", "value", "rare").await,
        3
    );

    // Erasure takes a person out of the sets still short of k.
    erase(&mesh, "dsr-small-1", &three[0].1).await?;
    assert_eq!(
        rows_where(&db, "aggregate_people", "value", "rare").await,
        2
    );

    // Within the window (7 days after the bucket's day) it may still reach k...
    clock.advance(Duration::days(7));
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!((buckets(&r), r.suppressed), (vec![(DAY, "common", 5)], 1));
    // ... after it, it goes with its hashes; published buckets stay.
    clock.advance(Duration::days(1));
    eventually("the small bucket is deleted", WAIT, || {
        let db = db.clone();
        async move {
            Ok(rows_where(&db, "aggregates", "value", "rare").await == 0
                && rows(&db, "aggregate_people").await == 0)
        }
    })
    .await?;
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!((buckets(&r), r.suppressed), (vec![(DAY, "common", 5)], 0));
    assert_eq!(rows_where(&db, "aggregates", "value", "common").await, 1);
    Ok(())
}

#[tokio::test]
async fn the_k_threshold_is_configurable_but_never_below_five() -> anyhow::Result<()> {
    let clock = start_clock();
    for k in ["0", "1", "4"] {
        let err = mesh_with(&clock, &[("telemetry.k_threshold", k)])
            .await
            .expect_err("the service refuses to start");
        let message = format!("{err:#}");
        assert!(
            message.contains("telemetry.k_threshold"),
            "k={k}: {message}"
        );
    }
    let mesh = mesh_with(&clock, &[("telemetry.k_threshold", "6")]).await?;
    let six = people(&mesh, 6).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    for (i, (_, subject)) in six.iter().enumerate() {
        ingest(
            &mut client,
            &format!("k6-{i}"),
            vec![feature(subject, "pair", at)],
        )
        .await?;
        let r = aggregates(&mut client, Dimension::Feature).await?;
        assert_eq!(r.k_threshold, 6);
        assert_eq!(r.buckets.is_empty(), i < 5, "{i}: {r:?}");
    }
    Ok(())
}

#[tokio::test]
async fn bad_queries_are_refused_field_by_field() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let err = client
        .query_aggregates(pb::QueryAggregatesRequest {
            dimension: Dimension::Unspecified as i32,
            from_day: "29/11/2026".into(),
            to_day: String::new(),
        })
        .await
        .expect_err("bad query");
    assert_eq!(field_violations(&err), ["dimension", "from_day", "to_day"]);
    let err = client
        .query_aggregates(pb::QueryAggregatesRequest {
            dimension: 99,
            from_day: "2025-01-01".into(),
            to_day: "2026-11-29".into(),
        })
        .await
        .expect_err("range too long, unknown dimension");
    assert_eq!(field_violations(&err), ["dimension", "to_day"]);
    let err = client
        .query_aggregates(pb::QueryAggregatesRequest {
            dimension: Dimension::Os as i32,
            from_day: "2026-11-29".into(),
            to_day: "2026-11-28".into(),
        })
        .await
        .expect_err("backwards range");
    assert_eq!(field_violations(&err), ["to_day"]);
    Ok(())
}
