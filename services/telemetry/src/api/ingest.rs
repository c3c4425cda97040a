//! IngestEvents: validate and minimise, gate on consent (once per batch), seal each
//! subject's details with the subject's key, and write batch, events and aggregates in
//! one transaction.

use std::collections::{BTreeMap, HashMap};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Duration;
use pdm_crypto::DataKey;
use pdm_proto::telemetry::v1::{self as pb, DropReason};
use prost::Message;
use serde_json::Value;

use super::{TelemetryApi, requests};
use crate::{
    error::{Result, TelemetryError},
    gate::Verdict,
    store::{Deltas, EventRow},
};

const F_PAYLOAD: &str = "events.payload";

fn deltas_of(events: &[&requests::CleanEvent]) -> Deltas {
    let mut deltas: Deltas = BTreeMap::new();
    for e in events {
        let day = e.occurred_at.date_naive().format("%Y-%m-%d").to_string();
        let kind = e
            .kind
            .as_str_name()
            .trim_start_matches("EVENT_KIND_")
            .to_owned();
        *deltas.entry((day.clone(), "EVENT_KIND", kind)).or_default() += 1;
        for (dimension, value) in [
            ("FEATURE", &e.feature),
            ("COUNTRY", &e.country),
            ("OS", &e.os),
            ("BROWSER", &e.browser),
        ] {
            if let Some(v) = value {
                *deltas
                    .entry((day.clone(), dimension, v.clone()))
                    .or_default() += 1;
            }
        }
    }
    deltas
}

impl TelemetryApi {
    /// Runs one batch.
    pub(super) async fn ingest(
        &self,
        request: pb::IngestEventsRequest,
    ) -> Result<pb::IngestEventsResponse> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let events = requests::batch(
            &request,
            now,
            Duration::days(inner.settings.max_event_age_days),
            &inner.geo,
        )?;
        // Backpressure: a bounded number of batches in memory at once.
        let _permit = inner
            .batches
            .try_acquire()
            .map_err(|_| TelemetryError::Overloaded)?;
        if let Some(stored) = inner
            .store
            .stored_response_if_any(&request.batch_id)
            .await?
        {
            return decode(&stored, true);
        }

        let mut subjects: Vec<String> =
            events.iter().filter_map(|e| e.subject_id.clone()).collect();
        subjects.sort();
        subjects.dedup();
        let mut verdicts: HashMap<String, Verdict> = HashMap::with_capacity(subjects.len());
        let mut to_ask = Vec::new();
        for s in subjects {
            if self.is_suppressed(&s) {
                verdicts.insert(s, Err(DropReason::Erased));
            } else if self.is_restricted(&s) {
                verdicts.insert(s, Err(DropReason::Restricted));
            } else {
                to_ask.push(s);
            }
        }
        verdicts.extend(inner.gate.judge(&to_ask).await?);

        let mut dropped: BTreeMap<i32, u32> = BTreeMap::new();
        let mut admitted = Vec::with_capacity(events.len());
        for e in &events {
            match e.subject_id.as_ref().map(|s| {
                verdicts
                    .get(s)
                    .copied()
                    .unwrap_or(Err(DropReason::NoConsent))
            }) {
                Some(Err(reason)) => *dropped.entry(reason as i32).or_default() += 1,
                _ => admitted.push(e),
            }
        }
        let mut keys: HashMap<String, DataKey> = HashMap::new();
        for e in &admitted {
            if let Some(s) = &e.subject_id
                && !keys.contains_key(s)
            {
                keys.insert(s.clone(), self.key(s).await?);
            }
        }
        let rows = self.seal(&admitted, keys).await?;
        let response = pb::IngestEventsResponse {
            accepted: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            dropped: dropped
                .into_iter()
                .map(|(reason, count)| pb::DropCount { reason, count })
                .collect(),
            duplicate: false,
        };
        let encoded = STANDARD.encode(response.encode_to_vec());
        let deltas = deltas_of(&admitted);
        match inner
            .store
            .write_batch(&request.batch_id, &encoded, &rows, &deltas, now)
            .await?
        {
            // The same batch id committed first (a concurrent retry): its answer stands.
            Some(stored) => decode(&stored, true),
            None => {
                tracing::debug!(batch_id = %request.batch_id, accepted = response.accepted, "batch stored");
                Ok(response)
            }
        }
    }

    /// Builds rows: details sealed with the subject's key (plain for anonymous events),
    /// device identifiers and peers replaced by keyed hashes. CPU work: off the async
    /// threads.
    async fn seal(
        &self,
        events: &[&requests::CleanEvent],
        keys: HashMap<String, DataKey>,
    ) -> Result<Vec<EventRow>> {
        let store = self.inner.store.clone();
        let events: Vec<requests::CleanEvent> = events.iter().map(|e| (*e).clone()).collect();
        tokio::task::spawn_blocking(move || {
            events
                .into_iter()
                .map(|e| {
                    let mut details = e.details;
                    if let Some(device) = &e.device_id {
                        let hash: String = store
                            .device_hash(device)
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        let entry = details
                            .entry("device")
                            .or_insert_with(|| Value::Object(serde_json::Map::new()));
                        if let Value::Object(map) = entry {
                            map.insert("device_hash".into(), Value::String(hash));
                        }
                    }
                    let json = serde_json::to_vec(&Value::Object(details))
                        .map_err(|_| TelemetryError::Internal("payload encoding"))?;
                    let (payload, sealed) = match e.subject_id.as_ref().and_then(|s| keys.get(s)) {
                        Some(key) => (key.seal(F_PAYLOAD, &json)?, true),
                        None => (json, false),
                    };
                    Ok(EventRow {
                        subject_id: e.subject_id,
                        kind: e.kind.as_str_name(),
                        occurred_at: e.occurred_at,
                        peer_hash: e.peer.as_deref().map(|p| store.subject_hash(p)),
                        payload,
                        sealed,
                    })
                })
                .collect()
        })
        .await
        .map_err(|_| TelemetryError::Internal("sealing task failed"))?
    }
}

/// Opens a sealed event payload.
pub fn open_payload(key: &DataKey, payload: &[u8]) -> Result<Value> {
    let bytes = key.open(F_PAYLOAD, payload)?;
    serde_json::from_slice(&bytes).map_err(|_| TelemetryError::Internal("payload decoding"))
}

fn decode(stored: &str, duplicate: bool) -> Result<pb::IngestEventsResponse> {
    let bytes = STANDARD
        .decode(stored)
        .map_err(|_| TelemetryError::Internal("stored answer decoding"))?;
    let mut response = pb::IngestEventsResponse::decode(bytes.as_slice())
        .map_err(|_| TelemetryError::Internal("stored answer decoding"))?;
    response.duplicate = duplicate;
    Ok(response)
}
