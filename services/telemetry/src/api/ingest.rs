//! IngestEvents: validate and minimise, gate on consent (once per batch), seal each
//! subject's details with the subject's key, and write batch, events and aggregates in
//! one transaction.

use std::collections::{BTreeMap, HashMap};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Duration;
use pdm_crypto::DataKey;
use pdm_proto::{
    common::v1::LegalBasis,
    telemetry::v1::{self as pb, DropReason},
};
use prost::Message;
use serde_json::Value;

use pdm_runtime::tls::identity::Caller;

use super::{TelemetryApi, requests};
use crate::{
    error::{Result, TelemetryError},
    gate::Verdict,
    store::{Deltas, EventRow},
};

const F_PAYLOAD: &str = "events.payload";
/// The key of the legal basis an event was admitted on, in its sealed details.
pub const LEGAL_BASIS: &str = "legal_basis";

fn deltas_of(events: &[requests::CleanEvent]) -> Deltas {
    // Counted under borrowed keys first: one allocation per bucket, not per event.
    let mut counts: BTreeMap<(chrono::NaiveDate, &'static str, &str), i64> = BTreeMap::new();
    for e in events {
        let day = e.occurred_at.date_naive();
        let kind = e.kind.as_str_name().trim_start_matches("EVENT_KIND_");
        *counts.entry((day, "EVENT_KIND", kind)).or_default() += 1;
        for (dimension, value) in [
            ("FEATURE", e.details.feature.as_deref()),
            ("COUNTRY", e.country()),
            ("OS", e.os()),
            ("BROWSER", e.browser()),
        ] {
            if let Some(v) = value {
                *counts.entry((day, dimension, v)).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|((day, dimension, value), n)| {
            (
                (
                    day.format("%Y-%m-%d").to_string(),
                    dimension,
                    value.to_owned(),
                ),
                n,
            )
        })
        .collect()
}

impl TelemetryApi {
    /// Runs one batch.
    pub(super) async fn ingest(
        &self,
        request: pb::IngestEventsRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::IngestEventsResponse> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let validate = || {
            requests::batch(
                &request,
                now,
                Duration::days(inner.settings.max_event_age_days),
                &inner.geo,
            )
        };
        let mut events = Some(validate()?);
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
        // A subject erased while the batch was judged is found by the write, which then
        // stores nothing: judge again (now knowing of the erasure). The events were
        // consumed by the attempt (no copy of a whole batch on every call): the rare retry
        // validates them again.
        let mut attempts = 0;
        loop {
            let events = match events.take() {
                Some(events) => events,
                None => validate()?,
            };
            match self
                .judge_and_write(&request.batch_id, events, now, caller)
                .await
            {
                Err(TelemetryError::ErasedMeanwhile(subjects)) if attempts < 3 => {
                    attempts += 1;
                    self.forget_erased(&subjects).await?;
                }
                answer => return answer,
            }
        }
    }

    /// Gates, seals and writes a validated batch.
    async fn judge_and_write(
        &self,
        batch_id: &str,
        events: Vec<requests::CleanEvent>,
        now: chrono::DateTime<chrono::Utc>,
        caller: Option<&Caller>,
    ) -> Result<pb::IngestEventsResponse> {
        let inner = &self.inner;
        let mut subjects: Vec<String> =
            events.iter().filter_map(|e| e.subject_id.clone()).collect();
        subjects.sort();
        subjects.dedup();
        let mut verdicts: HashMap<String, Verdict> = HashMap::with_capacity(subjects.len());
        let mut to_ask = Vec::new();
        // Once per distinct subject of the batch (answers are cached across batches). A
        // subject the caller may not see comes first, so nothing about it (erased,
        // restricted) shows through.
        for s in subjects {
            if !self.visible(caller, &s).await? {
                verdicts.insert(s, Err(DropReason::UnknownSubject));
            } else if self.is_suppressed(&s) {
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
        let mut bases = Vec::with_capacity(events.len());
        for e in events {
            match e.subject_id.as_ref().map(|s| {
                verdicts
                    .get(s)
                    .copied()
                    .unwrap_or(Err(DropReason::NoConsent))
            }) {
                Some(Err(reason)) => *dropped.entry(reason as i32).or_default() += 1,
                Some(Ok(basis)) => {
                    admitted.push(e);
                    bases.push(Some(basis));
                }
                None => {
                    admitted.push(e);
                    bases.push(None);
                }
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
        let deltas = deltas_of(&admitted);
        let rows = self.seal(admitted, bases, keys).await?;
        let response = pb::IngestEventsResponse {
            accepted: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            dropped: dropped
                .into_iter()
                .map(|(reason, count)| pb::DropCount { reason, count })
                .collect(),
            duplicate: false,
        };
        let encoded = STANDARD.encode(response.encode_to_vec());
        match inner
            .store
            .write_batch(batch_id, &encoded, &rows, &deltas, now)
            .await?
        {
            // The same batch id committed first (a concurrent retry): its answer stands.
            Some(stored) => decode(&stored, true),
            None => {
                tracing::debug!(batch_id = %batch_id, accepted = response.accepted, "batch stored");
                Ok(response)
            }
        }
    }

    /// Builds rows: details sealed with the subject's key (plain for anonymous events),
    /// device identifiers and peers replaced by keyed hashes. CPU work: off the async
    /// threads.
    async fn seal(
        &self,
        events: Vec<requests::CleanEvent>,
        bases: Vec<Option<LegalBasis>>,
        keys: HashMap<String, DataKey>,
    ) -> Result<Vec<EventRow>> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            events
                .into_iter()
                .zip(bases)
                .map(|(e, basis)| {
                    let mut details = e.details;
                    // What the subject's access report names for this event.
                    details.legal_basis = basis.map(|b| b.as_str_name());
                    if let Some(device) = &e.device_id {
                        details.device.get_or_insert_default().device_hash =
                            Some(crate::store::hex(&store.device_hash(device)));
                    }
                    let json = serde_json::to_vec(&details)
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
