//! IngestEvents: validate and minimise, gate logged-in events on consent (once per batch
//! and purpose) and logged-out ones on their device's tracking choice, seal each subject's
//! details with the subject's key, and write batch, events and aggregates (with the people
//! behind them) in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Duration;
use pdm_crypto::DataKey;
use pdm_proto::{
    common::v1::LegalBasis,
    telemetry::v1::{self as pb, DropReason},
};
use prost::Message;
use serde_json::Value;

use pdm_tls::identity::Caller;

use super::{TelemetryApi, requests};
use crate::{
    domain::tracking::{self, Category, Choice},
    error::{Result, TelemetryError},
    gate::{self, Verdict},
    store::{BucketDelta, Deltas, EventRow},
};

const F_PAYLOAD: &str = "events.payload";
/// The key of the legal basis an event was admitted on, in its sealed details.
pub const LEGAL_BASIS: &str = "legal_basis";
/// The key of the purpose an event was admitted for, in its sealed details.
pub const PURPOSE: &str = "purpose";

/// The aggregate increments of admitted events, with the people behind each bucket
/// (`persons[i]` is the keyed hash of event `i`'s subject or logged-out device, if any).
fn deltas_of(events: &[requests::CleanEvent], persons: &[Option<Vec<u8>>]) -> Deltas {
    // Counted under borrowed keys first: one allocation per bucket, not per event.
    type Counted<'a> = (i64, BTreeSet<&'a [u8]>);
    let mut counts: BTreeMap<(chrono::NaiveDate, &'static str, &str), Counted<'_>> =
        BTreeMap::new();
    for (e, person) in events.iter().zip(persons) {
        let day = e.occurred_at.date_naive();
        let kind = e.kind.as_str_name().trim_start_matches("EVENT_KIND_");
        let mut add = |key| {
            let entry: &mut Counted<'_> = counts.entry(key).or_default();
            entry.0 += 1;
            if let Some(p) = person {
                entry.1.insert(p.as_slice());
            }
        };
        add((day, "EVENT_KIND", kind));
        for (dimension, value) in [
            ("FEATURE", e.details.feature.as_deref()),
            ("COUNTRY", e.country()),
            ("OS", e.os()),
            ("BROWSER", e.browser()),
        ] {
            if let Some(v) = value {
                add((day, dimension, v));
            }
        }
    }
    counts
        .into_iter()
        .map(|((day, dimension, value), (events, people))| {
            (
                (
                    day.format("%Y-%m-%d").to_string(),
                    dimension,
                    value.to_owned(),
                ),
                BucketDelta {
                    events,
                    people: people.into_iter().map(<[u8]>::to_vec).collect(),
                },
            )
        })
        .collect()
}

/// The purpose an event of `category` is stored for, as the access report names it.
fn filed_under(category: Category) -> &'static str {
    purpose_of(category).unwrap_or(gate::STRICTLY_NECESSARY)
}

/// The consent purpose a logged-in subject's event of `category` is asked about; none
/// for strictly necessary ones.
fn purpose_of(category: Category) -> Option<&'static str> {
    match category {
        Category::StrictlyNecessary => None,
        Category::Analytics => Some(gate::PURPOSE),
        Category::Advertising => Some(gate::ADVERTISING),
    }
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
        // Backpressure: a bounded number of batches in work at once. Asked before the
        // batch is validated, so a batch refused for load costs no validation (it is paid
        // on the retry): measured at 16 batches in flight against a limit of 8, refused
        // batches had tripled the service's CPU per stored event.
        let _permit = inner
            .batches
            .try_acquire()
            .map_err(|_| TelemetryError::Overloaded)?;
        let mut events = Some(validate()?);
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
        // Subjects dropped whatever the purpose.
        let mut blocked: HashMap<String, DropReason> = HashMap::new();
        // Once per distinct subject of the batch (answers are cached across batches). A
        // subject the caller may not see comes first, so nothing about it (erased,
        // restricted) shows through.
        for s in subjects {
            if !self.visible(caller, &s).await? {
                blocked.insert(s, DropReason::UnknownSubject);
            } else if self.is_suppressed(&s) {
                blocked.insert(s, DropReason::Erased);
            } else if self.is_restricted(&s) {
                blocked.insert(s, DropReason::Restricted);
            }
        }
        // Consent is asked once per purpose, for the distinct subjects needing it.
        let mut asks: BTreeMap<&'static str, BTreeSet<&str>> = BTreeMap::new();
        for e in &events {
            if let (Some(s), Some(purpose)) = (&e.subject_id, purpose_of(e.tracking))
                && !blocked.contains_key(s)
            {
                asks.entry(purpose).or_default().insert(s.as_str());
            }
        }
        let mut verdicts: HashMap<(String, &'static str), Verdict> = HashMap::new();
        for (purpose, subjects) in asks {
            let subjects: Vec<String> = subjects.into_iter().map(str::to_owned).collect();
            for (s, verdict) in inner.gate.judge(&subjects, purpose).await? {
                verdicts.insert((s, purpose), verdict);
            }
        }
        // Logged-out visitors: the latest choice of each device, if it has not lapsed.
        let mut device_hashes: HashMap<String, Vec<u8>> = HashMap::new();
        for e in &events {
            if e.subject_id.is_none()
                && let Some(d) = e.device_id.as_deref()
                && !device_hashes.contains_key(d)
            {
                device_hashes.insert(d.to_owned(), inner.store.device_hash(d));
            }
        }
        let choices = if device_hashes.is_empty() {
            HashMap::new()
        } else {
            let hashes: Vec<Vec<u8>> = device_hashes.values().cloned().collect();
            let since = now - Duration::days(i64::from(inner.settings.tracking_choice_days));
            inner.store.current_choices(&hashes, since).await?
        };

        let mut dropped: BTreeMap<i32, u32> = BTreeMap::new();
        let mut admitted = Vec::with_capacity(events.len());
        let mut bases = Vec::with_capacity(events.len());
        for e in events {
            let verdict: Verdict = match &e.subject_id {
                Some(s) => match (blocked.get(s), purpose_of(e.tracking)) {
                    (Some(reason), _) => Err(*reason),
                    // Strictly necessary: no agreement needed.
                    (None, None) => Ok(LegalBasis::LegitimateInterests),
                    // GPC on the request: no advertising, whatever consent says.
                    (None, Some(_)) if e.tracking == Category::Advertising && e.gpc => {
                        Err(DropReason::GlobalPrivacyControl)
                    }
                    (None, Some(purpose)) => verdicts
                        .get(&(s.clone(), purpose))
                        .copied()
                        .unwrap_or(Err(DropReason::NoConsent)),
                },
                None => {
                    let choice = e
                        .device_id
                        .as_deref()
                        .and_then(|d| device_hashes.get(d))
                        .and_then(|h| choices.get(h))
                        .map(|c| Choice {
                            analytics: c.analytics,
                            advertising: c.advertising,
                            gpc: c.gpc,
                        });
                    tracking::decide(choice, e.tracking, e.gpc)
                }
            };
            match verdict {
                Err(reason) => *dropped.entry(reason as i32).or_default() += 1,
                Ok(basis) => {
                    admitted.push(e);
                    bases.push(Some(basis));
                }
            }
        }
        // The people behind the admitted events, for the aggregates' k.
        let mut person_of: HashMap<(bool, &str), Vec<u8>> = HashMap::new();
        let persons: Vec<Option<Vec<u8>>> = admitted
            .iter()
            .map(|e| {
                let (logged_in, id) = match (&e.subject_id, &e.device_id) {
                    (Some(s), _) => (true, s.as_str()),
                    (None, Some(d)) => (false, d.as_str()),
                    (None, None) => return None,
                };
                Some(
                    person_of
                        .entry((logged_in, id))
                        .or_insert_with(|| {
                            if logged_in {
                                inner.store.person_of_subject(id)
                            } else {
                                inner.store.person_of_device(id)
                            }
                        })
                        .clone(),
                )
            })
            .collect();
        drop(person_of);
        let deltas = deltas_of(&admitted, &persons);
        let mut keys: HashMap<String, DataKey> = HashMap::new();
        for e in &admitted {
            if let Some(s) = &e.subject_id
                && !keys.contains_key(s)
            {
                keys.insert(s.clone(), self.key(s).await?);
            }
        }
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
            .write_batch(
                batch_id,
                &encoded,
                &rows,
                (&deltas, inner.settings.k_threshold),
                now,
            )
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
            // A batch names few devices, each on many events: each is hashed once.
            let mut device_hashes: HashMap<String, String> = HashMap::new();
            events
                .into_iter()
                .zip(bases)
                .map(|(e, basis)| {
                    let mut details = e.details;
                    // What the subject's access report names for this event.
                    details.legal_basis = basis.map(|b| b.as_str_name());
                    details.purpose = Some(filed_under(e.tracking));
                    if let Some(device) = e.device_id {
                        let hash = device_hashes
                            .entry(device)
                            .or_insert_with_key(|d| crate::store::hex(&store.device_hash(d)));
                        details.device.get_or_insert_default().device_hash = Some(hash.clone());
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
