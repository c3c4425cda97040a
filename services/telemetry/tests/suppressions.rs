//! The suppression list (keyed hashes of erased subjects, so their late events are
//! dropped: "The right to erasure") as the replicas' deleters read it: only what was
//! added since they last looked. Issue 19: the list grows with every erasure and was read
//! whole every five seconds by every replica.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pdm_crypto::{KekSet, KeyStore};
use pdm_telemetry::store::{Store, entities::suppression};
use pdm_testkit::start_clock;
use sea_orm::{ActiveValue::Set, EntityTrait};

/// A store on the mesh's telemetry database, as another replica would open it (its key
/// store is not used: the suppressions are written here as keyed hashes already).
async fn other_replica(mesh: &pdm_testkit::Mesh) -> anyhow::Result<Store> {
    let root = [7u8; 32];
    let keys = KeyStore::open(
        mesh.connect_key_store("telemetry").await?,
        KekSet::root_only(&root),
        &root,
    )
    .await?;
    Ok(Store::new(mesh.connect_db("telemetry").await?, keys))
}

async fn suppress(store: &Store, hash: u8, at: DateTime<Utc>) -> anyhow::Result<()> {
    suppression::Entity::insert(suppression::ActiveModel {
        subject_hash: Set(vec![hash; 32]),
        erased_at: Set(at),
    })
    .exec(store.db())
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_replica_reads_only_the_suppressions_added_since_it_last_looked() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = support::mesh(&clock).await?;
    let store = other_replica(&mesh).await?;
    let nine = Utc
        .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    suppress(&store, 1, nine).await?;
    suppress(&store, 2, nine + Duration::hours(1)).await?;

    // The first read (at start) takes every suppression, and the latest time among them.
    let (mut all, latest) = store.suppressed_since(None).await?;
    all.sort();
    assert_eq!(all, vec![vec![1u8; 32], vec![2u8; 32]]);
    assert_eq!(latest, Some(nine + Duration::hours(1)));

    // Later reads take what was erased from then on (the deleter starts a margin before
    // the latest it saw), not the whole list again.
    let (since, latest) = store
        .suppressed_since(Some(nine + Duration::minutes(30)))
        .await?;
    assert_eq!(since, vec![vec![2u8; 32]]);
    assert_eq!(latest, Some(nine + Duration::hours(1)));
    let (at_the_latest, _) = store
        .suppressed_since(Some(nine + Duration::hours(1)))
        .await?;
    assert_eq!(
        at_the_latest,
        vec![vec![2u8; 32]],
        "an erasure at the very time read from is read"
    );
    let (after, latest) = store
        .suppressed_since(Some(nine + Duration::hours(2)))
        .await?;
    assert!(after.is_empty() && latest.is_none());
    Ok(())
}
