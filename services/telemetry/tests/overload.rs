//! Backpressure: past `telemetry.max_batches_in_flight` the service answers
//! RESOURCE_EXHAUSTED with a retry delay instead of queueing without bound, and nothing is
//! lost silently: every acknowledged batch is stored, every refused one is not, and a
//! retry of a refused batch goes in.

mod support;

use std::collections::BTreeMap;

use pdm_runtime::tonic_types::StatusExt;
use pdm_testkit::assert::{rows, rows_where};
use pdm_testkit::start_clock;
use support::{consenting, events, ingest, mesh_with, now, secrets};
use tonic::Code;

const BATCHES: usize = 24;
const EVENTS_PER_BATCH: usize = 200;

#[tokio::test]
async fn overload_answers_resource_exhausted_and_loses_nothing() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh_with(&clock, &[("telemetry.max_batches_in_flight", "1")]).await?;
    let (person, subject) = consenting(&mesh).await?;
    let client = mesh.telemetry();
    let at = now(&clock);

    // Rounds of concurrent batches until at least one is refused (the first round nearly
    // always suffices; the bound keeps a broken limit from looping forever).
    let mut accepted: BTreeMap<String, u32> = BTreeMap::new();
    let mut refused: Vec<String> = Vec::new();
    for round in 0..5 {
        let mut senders = tokio::task::JoinSet::new();
        for i in 0..BATCHES {
            let mut client = client.clone();
            let batch_id = format!("load-{round}-{i}");
            let batch = events(&subject, at, EVENTS_PER_BATCH);
            senders.spawn(async move {
                let answer = ingest(&mut client, &batch_id, batch).await;
                (batch_id, answer)
            });
        }
        while let Some(sent) = senders.join_next().await {
            let (batch_id, answer) = sent?;
            match answer {
                Ok(r) => {
                    assert!(!r.duplicate);
                    accepted.insert(batch_id, r.accepted);
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
                    assert!(retry.is_some(), "the refusal says when to retry");
                    refused.push(batch_id);
                }
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    assert!(
        !refused.is_empty(),
        "{} batches at once with one allowed in flight were all accepted",
        BATCHES
    );
    assert!(!accepted.is_empty(), "some batches get through under load");

    let db = mesh.connect_db("telemetry").await?;
    for (batch_id, n) in &accepted {
        assert_eq!(*n as usize, EVENTS_PER_BATCH);
        assert_eq!(
            rows_where(&db, "events", "batch_id", batch_id).await,
            u64::from(*n),
            "an acknowledged batch is stored"
        );
    }
    for batch_id in &refused {
        assert_eq!(rows_where(&db, "events", "batch_id", batch_id).await, 0);
        assert_eq!(rows_where(&db, "batches", "batch_id", batch_id).await, 0);
    }

    // Refused batches are retried one at a time: each goes in.
    let mut client = client.clone();
    for batch_id in &refused {
        let r = ingest(
            &mut client,
            batch_id,
            events(&subject, at, EVENTS_PER_BATCH),
        )
        .await?;
        assert_eq!(
            (r.accepted as usize, r.duplicate),
            (EVENTS_PER_BATCH, false)
        );
    }
    assert_eq!(
        rows(&db, "events").await as usize,
        (accepted.len() + refused.len()) * EVENTS_PER_BATCH
    );
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}
