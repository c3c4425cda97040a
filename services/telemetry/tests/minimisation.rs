//! Minimisation on the way in ("Information About Your Devices": "Your IP address (which
//! we use to roughly determine your location)", "URLs of websites you visited before and
//! after", device identifiers), checked in the raw database bytes: only truncated
//! addresses, URLs without query strings or fragments, keyed hashes of device identifiers
//! and interaction peers.

mod support;

use pdm_proto::telemetry::v1::{self as pb, Dimension, EventKind};
use pdm_runtime::convert::{struct_to_json, timestamp};
use pdm_testkit::assert::{contains, raw_storage};
use pdm_testkit::start_clock;
use serde_json::Value;
use support::{
    DAY, IP_NETWORK, RAW_IP, consenting, device, export, ingest, mesh_with, necessary, now, secrets,
};

const RAW_IPV6: &str = "2001:db8:85a3:8d3:1319:8a2e:370:7348";
const IPV6_NETWORK: &str = "2001:db8:85a3::";
const IP_DATABASE: &str = "network,country,region\n\
    # documentation ranges\n\
    203.0.113.0/24,GB,England\n\
    2001:db8::/32,DE,Berlin\n";

fn bucket(r: &pb::QueryAggregatesResponse, value: &str) -> Option<u64> {
    r.buckets
        .iter()
        .find(|b| b.day == DAY && b.value == value)
        .map(|b| b.count)
}

#[tokio::test]
async fn ips_urls_device_ids_and_peers_are_minimised_before_storage() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("ip-networks.csv");
    std::fs::write(&csv, IP_DATABASE)?;
    let clock = start_clock();
    let mesh = mesh_with(
        &clock,
        &[("telemetry.ip_database", &csv.display().to_string())],
    )
    .await?;
    let (person, subject) = consenting(&mesh).await?;
    let device_id = format!("device-{}", uuid::Uuid::now_v7().simple());
    let anonymous_device = format!("device-{}", uuid::Uuid::now_v7().simple());
    let peer = uuid::Uuid::now_v7().to_string();
    let at = now(&clock);
    let mut client = mesh.telemetry();

    let with_device = |e: pb::Event, id: &str| pb::Event {
        device: Some(device(id)),
        ..e
    };
    let subject_events = vec![
        with_device(
            pb::Event {
                subject_id: subject.clone(),
                kind: EventKind::LinkClicked as i32,
                occurred_at: Some(timestamp(at)),
                link_url: "https://Docs.Example.com/pricing?email=ada%40example.org&plan=pro#faq"
                    .into(),
                ..Default::default()
            },
            &device_id,
        ),
        with_device(
            pb::Event {
                subject_id: subject.clone(),
                kind: EventKind::Interaction as i32,
                occurred_at: Some(timestamp(at)),
                peer_subject_id: peer.clone(),
                ..Default::default()
            },
            &device_id,
        ),
        with_device(
            pb::Event {
                subject_id: subject.clone(),
                kind: EventKind::PageView as i32,
                occurred_at: Some(timestamp(at)),
                screen: "settings".into(),
                ..Default::default()
            },
            &device_id,
        ),
    ];
    let r = ingest(&mut client, "mini-1", subject_events).await?;
    assert_eq!(r.accepted, 3);
    // Anonymous events are stored unsealed: the plainest view of what minimisation keeps.
    // Five logged-out devices each (aggregates show only buckets of five people or more);
    // strictly necessary, so no tracking choice is needed.
    let anonymous = |i: usize| {
        necessary(with_device(
            support::feature("", "search", at),
            &format!("{anonymous_device}-{i}"),
        ))
    };
    let ipv6 = |i: usize| {
        necessary(pb::Event {
            device: Some(pb::DeviceContext {
                ip_address: RAW_IPV6.into(),
                os_name: "macOS".into(),
                device_id: format!("{anonymous_device}-v6-{i}"),
                ..Default::default()
            }),
            ..support::feature("", "search", at)
        })
    };
    let mut batch: Vec<pb::Event> = (0..5).map(anonymous).collect();
    batch.extend((0..5).map(ipv6));
    let r = ingest(&mut client, "mini-2", batch).await?;
    assert_eq!(r.accepted, 10);

    let raw = raw_storage(&mesh, "telemetry").await;
    for (what, value) in [
        ("raw IPv4 address", RAW_IP),
        ("raw IPv6 address", RAW_IPV6),
        ("IPv6 host part", "1319:8a2e"),
        ("query string", "ada+lovelace"),
        ("query string", "utm_source"),
        ("query string", "session=abc123"),
        ("query string", "plan=pro"),
        ("email in a query string", "ada%40example.org"),
        ("fragment", "#faq"),
        ("device identifier", &device_id),
        ("device identifier", &anonymous_device),
        ("interaction peer", &peer),
    ] {
        assert!(!contains(&raw, value), "{what} found in raw storage");
    }
    // Positive controls: the scan sees plaintext, and the minimised values are there.
    for kept in [
        IP_NETWORK,
        IPV6_NETWORK,
        "https://docs.example.com/guide",
        "https://search.example/results",
        "device_hash",
    ] {
        assert!(contains(&raw, kept), "{kept} missing from raw storage");
    }

    // The subject's own view: opened details, minimised the same way.
    let records = export(&mesh, &subject).await?;
    assert_eq!(records.len(), 3);
    let details: Vec<Value> = records
        .iter()
        .map(|r| struct_to_json(r.data.as_ref().expect("data")))
        .collect();
    let link = details
        .iter()
        .find(|d| d["kind"] == "EVENT_KIND_LINK_CLICKED")
        .expect("link event exported");
    assert_eq!(
        link["details"]["link_url"],
        "https://docs.example.com/pricing"
    );
    let device = &link["details"]["device"];
    assert_eq!(device["ip_network"], IP_NETWORK);
    assert_eq!(
        (&device["country"], &device["region"]),
        (&"GB".into(), &"England".into())
    );
    assert_eq!(device["referrer_url"], "https://search.example/results");
    assert_eq!(device["exit_url"], "https://docs.example.com/guide");
    assert_eq!(device["connection"], "wifi");
    assert_eq!(device["os_name"], "Linux");
    assert!(device.get("ip_address").is_none() && device.get("device_id").is_none());
    let hash = device["device_hash"].as_str().unwrap_or_default();
    assert!(
        hash.len() >= 32 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "device identifiers are stored as keyed hashes"
    );
    let exported = serde_json::to_string(&details)?;
    for leaked in [RAW_IP, device_id.as_str(), peer.as_str(), "plan=pro"] {
        assert!(!exported.contains(leaked), "export holds a raw value");
    }

    // Coarse locations feed the aggregates; the raw address never did.
    let query = |dimension: Dimension| pb::QueryAggregatesRequest {
        dimension: dimension as i32,
        from_day: DAY.into(),
        to_day: DAY.into(),
    };
    let countries = client
        .query_aggregates(query(Dimension::Country))
        .await?
        .into_inner();
    assert_eq!(bucket(&countries, "GB"), Some(8), "{countries:?}");
    assert_eq!(bucket(&countries, "DE"), Some(5), "{countries:?}");
    let browsers = client
        .query_aggregates(query(Dimension::Browser))
        .await?
        .into_inner();
    assert_eq!(bucket(&browsers, "Firefox"), Some(8), "{browsers:?}");

    mesh.logs().assert_clean(&secrets(
        &person,
        &[
            ("raw IPv6 address", RAW_IPV6),
            ("device identifier", &device_id),
            ("device identifier", &anonymous_device),
            ("interaction peer", &peer),
        ],
    ));
    Ok(())
}

#[tokio::test]
async fn without_an_ip_database_there_is_no_location() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh_with(&clock, &[]).await?;
    let at = now(&clock);
    let mut client = mesh.telemetry();
    let anonymous = |i: usize| {
        necessary(pb::Event {
            device: Some(device(&format!("device-anonymous-{i}"))),
            ..support::feature("", "search", at)
        })
    };
    let r = ingest(&mut client, "no-geo", (0..6).map(anonymous).collect()).await?;
    assert_eq!(r.accepted, 6);
    let countries = client
        .query_aggregates(pb::QueryAggregatesRequest {
            dimension: Dimension::Country as i32,
            from_day: DAY.into(),
            to_day: DAY.into(),
        })
        .await?
        .into_inner();
    assert!(countries.buckets.is_empty() && countries.suppressed == 0);
    let raw = raw_storage(&mesh, "telemetry").await;
    assert!(contains(&raw, IP_NETWORK) && !contains(&raw, RAW_IP));
    assert!(!contains(&raw, "\"country\""));
    Ok(())
}
