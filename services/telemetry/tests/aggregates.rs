//! Non-identifying aggregates ("For Research and Improving Our Services": "aggregate
//! information ... You cannot be identified from aggregate information"): buckets under the
//! k-threshold are withheld, and the counts outlive a subject's erasure.

mod support;

use pdm_proto::telemetry::v1::{self as pb, Dimension};
use pdm_testkit::assert::{field_violations, rows_where};
use support::{
    Client, DAY, clock, consenting, erase, eventually, feature, ingest, mesh, mesh_with, now,
    secrets,
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

#[tokio::test]
async fn buckets_under_the_k_threshold_are_withheld() -> anyhow::Result<()> {
    let clock = clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let mut batch = vec![feature("", "rare", at); 4];
    batch.extend(vec![feature("", "common", at); 5]);
    ingest(&mut client, "k-1", batch).await?;
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(
        buckets(&r),
        [(DAY, "common", 5)],
        "4 events stay hidden, 5 show"
    );
    assert_eq!((r.suppressed, r.k_threshold), (1, 5));

    ingest(&mut client, "k-2", vec![feature("", "rare", at)]).await?;
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(buckets(&r), [(DAY, "common", 5), (DAY, "rare", 5)]);
    assert_eq!(r.suppressed, 0);

    let r = aggregates(&mut client, Dimension::EventKind).await?;
    assert_eq!(buckets(&r), [(DAY, "FEATURE_USED", 10)]);
    let r = aggregates(&mut client, Dimension::Os).await?;
    assert_eq!(buckets(&r), [(DAY, "Linux", 10)]);

    // Another day's query does not see today's counts.
    let r = client
        .query_aggregates(pb::QueryAggregatesRequest {
            dimension: Dimension::Feature as i32,
            from_day: "2026-11-30".into(),
            to_day: "2026-12-31".into(),
        })
        .await?
        .into_inner();
    assert!(r.buckets.is_empty() && r.suppressed == 0);
    Ok(())
}

#[tokio::test]
async fn the_k_threshold_is_configurable() -> anyhow::Result<()> {
    let clock = clock();
    let mesh = mesh_with(&clock, &[("telemetry.k_threshold", "2")]).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let mut batch = vec![feature("", "pair", at); 2];
    batch.push(feature("", "single", at));
    ingest(&mut client, "k-cfg", batch).await?;
    let r = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(buckets(&r), [(DAY, "pair", 2)]);
    assert_eq!((r.suppressed, r.k_threshold), (1, 2));
    Ok(())
}

#[tokio::test]
async fn aggregates_survive_the_erasure_of_the_subjects_behind_them() -> anyhow::Result<()> {
    let clock = clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let r = ingest(
        &mut client,
        "agg-erase",
        vec![feature(&subject, "report", at); 6],
    )
    .await?;
    assert_eq!(r.accepted, 6);
    let before = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(buckets(&before), [(DAY, "report", 6)]);

    let receipt = erase(&mesh, "dsr-agg-1", &subject).await?;
    assert!(receipt.key_destroyed);
    assert!(
        receipt
            .retained
            .iter()
            .any(|r| r.category == "telemetry.aggregate"),
        "the receipt says aggregates are kept, and why"
    );
    let db = mesh.connect_db("telemetry").await?;
    eventually("the erased subject's events are deleted", || {
        let db = db.clone();
        let subject = subject.clone();
        async move { Ok(rows_where(&db, "events", "subject_id", &subject).await == 0) }
    })
    .await?;
    let after = aggregates(&mut client, Dimension::Feature).await?;
    assert_eq!(after, before, "aggregates are not personal data and stay");
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn bad_queries_are_refused_field_by_field() -> anyhow::Result<()> {
    let clock = clock();
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
