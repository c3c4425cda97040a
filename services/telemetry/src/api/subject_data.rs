//! `pdm.subject.v1.SubjectDataService` for the telemetry service. Export streams the
//! subject's events from one query; erasure destroys the key at once (every row becomes
//! unreadable) and deletes the rows in the background; aggregates stay.

use pdm_access_trail as audit;
use pdm_runtime::erasure;
use std::pin::Pin;

use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{self as pb, subject_data_service_server::SubjectDataService},
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::{from_timestamp, json_to_struct, timestamp},
    ids::check_request_id,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{
    TelemetryApi,
    ingest::{LEGAL_BASIS, PURPOSE, open_payload},
    telemetry::open_crash,
};
use crate::{
    error::{Result, TelemetryError},
    gate,
    store::Erased,
};

const SERVICE: &str = "telemetry";
/// Usage events.
pub const EVENTS: &str = "telemetry.event";
/// Crash reports.
pub const CRASHES: &str = "telemetry.crash";
/// Category key of aggregates (policy: "We may also retain aggregate information beyond
/// this time"; kept as long as `telemetry.aggregate` says, counted from the bucket's day).
pub const AGGREGATES: &str = "telemetry.aggregate";

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportSubjectResponse, Status>> + Send>>;

fn retention(rule: &str) -> Option<pb::Retention> {
    Some(pb::Retention {
        rule: rule.to_owned(),
        delete_after: None,
    })
}

impl TelemetryApi {
    async fn export_into(
        &self,
        subject: SubjectId,
        tx: mpsc::Sender<Result<pb::ExportSubjectResponse, Status>>,
    ) -> Result<()> {
        let Some(key) = self.existing_key(&subject.to_string()).await? else {
            return Ok(());
        };
        let send = |record: pb::SubjectRecord| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(pb::ExportSubjectResponse {
                    record: Some(record),
                }))
                .await
                .is_ok()
            }
        };
        let mut events = self.inner.store.stream_events_of(&subject).await?;
        while let Some(e) = events.next().await {
            let e = e?;
            let mut details = if e.sealed {
                open_payload(&key, &e.payload)?
            } else {
                serde_json::from_slice(&e.payload).unwrap_or_default()
            };
            // Events stored before the basis was recorded were all admitted on consent, and
            // before the purpose was, for product analytics.
            let basis = details
                .as_object_mut()
                .and_then(|d| d.remove(LEGAL_BASIS))
                .and_then(|b| b.as_str().and_then(LegalBasis::from_str_name))
                .unwrap_or(LegalBasis::Consent);
            let purpose = details
                .as_object_mut()
                .and_then(|d| d.remove(PURPOSE))
                .and_then(|p| p.as_str().map(str::to_owned))
                .unwrap_or_else(|| gate::PURPOSE.to_owned());
            let record = pb::SubjectRecord {
                service: SERVICE.to_owned(),
                category: EVENTS.to_owned(),
                record_id: e.event_id.to_string(),
                purposes: vec![purpose],
                legal_basis: basis as i32,
                source:
                    "collected automatically from the subject's use of our services and devices"
                        .to_owned(),
                retention: retention(
                    "a configurable period after the event (default 13 months), then purged",
                ),
                recipients: Vec::new(),
                data: Some(json_to_struct(
                    json!({ "kind": e.kind, "details": details }),
                )),
                attachment: None,
                created_at: Some(timestamp(e.occurred_at)),
            };
            if !send(record).await {
                return Ok(());
            }
        }
        // The finished stream still holds its pooled connection: the next read needs one
        // too (with a pool of one, or every connection held by an export at this point,
        // it would wait on itself until the pool's timeout).
        drop(events);
        for c in self.inner.store.crashes_of(&subject).await? {
            let details = if c.sealed {
                open_crash(&key, &c.payload)?
            } else {
                serde_json::from_slice(&c.payload).unwrap_or_default()
            };
            let record = pb::SubjectRecord {
                service: SERVICE.to_owned(),
                category: CRASHES.to_owned(),
                record_id: c.crash_id,
                // The purpose and basis ReportCrash filed it under.
                purposes: vec![gate::CRASH_REPORTS.to_owned()],
                legal_basis: LegalBasis::LegitimateInterests as i32,
                source: "reported automatically when our software failed on the subject's device"
                    .to_owned(),
                retention: retention(
                    "until the problem is fixed and at most the retention period for crash reports",
                ),
                recipients: Vec::new(),
                data: Some(json_to_struct(
                    json!({ "error_type": c.error_type, "details": details }),
                )),
                attachment: None,
                created_at: Some(timestamp(c.occurred_at)),
            };
            if !send(record).await {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn erase(&self, request_id: &str, subject_id: &SubjectId) -> Result<pb::ErasureReceipt> {
        let subject = subject_id.to_string();
        let subject = subject.as_str();
        let subject_ref = erasure::hex_ref(&self.inner.store.subject_hash(subject));
        let receipts = self.inner.store.receipts();
        if let Some(done) = receipts.find(request_id, subject, &subject_ref).await? {
            // A retry after a stop between the erasure's commit and the key's destruction.
            self.inner.store.destroy_key(subject).await?;
            return Ok(done);
        }
        let now = self.inner.clock.now();
        let stored = self
            .inner
            .store
            .erase_now(subject_id, now, |done| {
                self.receipt(request_id, subject, done, now)
            })
            .await?;
        self.inner
            .keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
        self.inner
            .suppressed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.inner.store.subject_hash(subject));
        self.inner
            .restricted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
        let receipt = match stored {
            Some(receipt) => receipt,
            // The same request finished first, concurrently: its receipt holds.
            None => receipts
                .find(request_id, subject, &subject_ref)
                .await?
                .ok_or(TelemetryError::Internal("erasure receipt vanished"))?,
        };
        // Only now: a large background deletion competing with this call's own writes
        // would make erasure time grow with the subject's volume.
        self.inner.erasures.notify_one();
        Ok(receipt)
    }

    /// The receipt of an erasure that did `done`.
    fn receipt(
        &self,
        request_id: &str,
        subject: &str,
        done: Erased,
        now: chrono::DateTime<chrono::Utc>,
    ) -> pb::ErasureReceipt {
        let mut erased = vec![pb::ErasedItem {
            // Counting could take as long as deleting: the receipt says what happens instead.
            category: format!(
                "{EVENTS} (all: unreadable now, key destroyed; rows deleted in the background)"
            ),
            count: 0,
        }];
        if done.crashes > 0 {
            erased.push(pb::ErasedItem {
                category: CRASHES.to_owned(),
                count: done.crashes,
            });
        }
        pb::ErasureReceipt {
            request_id: request_id.to_owned(),
            subject_id: subject.to_owned(),
            service: SERVICE.to_owned(),
            erased,
            retained: vec![pb::RetainedItem {
                category: "telemetry.aggregate".to_owned(),
                legal_basis: LegalBasis::LegitimateInterests as i32,
                reason: "daily counts that cannot identify anyone (a bucket is shown only with at least k distinct people behind it, and stays so) \
                         stay for research (policy: aggregate information)"
                    .to_owned(),
                retain_until: None,
                count: 0,
            }],
            completed_at: Some(timestamp(now)),
            key_destroyed: done.key_destroyed,
            key_backups_gone_by: done.key_destroyed
                .then(|| timestamp(self.inner.store.keys().backups_gone_by(now))),
        }
    }
}

fn subject_id(raw: &str) -> Result<SubjectId> {
    let mut v = FieldViolations::new();
    let id = v.check("subject_id", raw.parse::<SubjectId>());
    v.finish().map_err(TelemetryError::Invalid)?;
    id.ok_or(TelemetryError::Internal("validated subject missing"))
}

/// The table and the column saying since when a row is held, per category this service
/// holds subjects by (`ListSubjectsHeld`); other categories answer nothing.
fn held_table(category: &str) -> Option<erasure::held::HeldTable> {
    match category {
        "telemetry.event" => Some(("events", "occurred_at")),
        "telemetry.crash" => Some(("crashes", "occurred_at")),
        _ => None,
    }
}

#[tonic::async_trait]
impl SubjectDataService for TelemetryApi {
    type ListSubjectsHeldStream = erasure::held::HeldStream;

    async fn list_subjects_held(
        &self,
        request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        erasure::held::list_subjects_held(
            self.inner.store.db(),
            SERVICE,
            request.get_ref(),
            held_table,
        )
        .await
    }

    type ExportSubjectStream = ExportStream;

    async fn export_subject(
        &self,
        request: Request<pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        let subject = subject_id(&request.get_ref().subject_id)?;
        let purpose = request.get_ref().request_id.clone();
        // The request id is kept in the access trail as the access's purpose.
        if !purpose.is_empty() {
            pdm_runtime::ids::check_request_id(&purpose)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        let (tx, rx) = mpsc::channel(64);
        let api = self.clone();
        let exported = subject;
        // The export is this call's work: it stays in the call's span (and trace).
        tokio::spawn(
            async move {
                if let Err(err) = api.export_into(exported, tx.clone()).await {
                    let _ = tx.send(Err(err.into())).await;
                }
            }
            .in_current_span(),
        );
        let stream: Self::ExportSubjectStream = Box::pin(ReceiverStream::new(rx));
        Ok(audit::respond(stream, subject.to_string(), purpose))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        let (request_id, subject) = erasure::erase_request(request.get_ref())?;
        let receipt = self.erase(&request_id, &subject).await?;
        tracing::info!(subject_id = %subject, request_id, "subject erased");
        Ok(audit::respond(
            pb::EraseSubjectResponse {
                receipt: Some(receipt),
            },
            subject.to_string(),
            request_id,
        ))
    }

    async fn restrict_subject(
        &self,
        request: Request<pb::RestrictSubjectRequest>,
    ) -> Result<Response<pb::RestrictSubjectResponse>, Status> {
        let r = request.get_ref();
        let subject = subject_id(&r.subject_id)?;
        // The request id is kept in the access trail as the access's purpose.
        if !r.request_id.is_empty() {
            check_request_id(&r.request_id)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        self.inner
            .store
            .set_restricted(&subject, r.restricted, self.inner.clock.now())
            .await?;
        {
            let mut restricted = self
                .inner
                .restricted
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if r.restricted {
                restricted.insert(subject.to_string());
            } else {
                restricted.remove(&subject.to_string());
            }
        }
        let known = self.existing_key(&subject.to_string()).await?.is_some();
        Ok(audit::respond(
            pb::RestrictSubjectResponse {
                restricted: r.restricted,
                subject_known: known,
            },
            subject.to_string(),
            r.request_id.clone(),
        ))
    }

    async fn purge_expired(
        &self,
        request: Request<pb::PurgeExpiredRequest>,
    ) -> Result<Response<pb::PurgeExpiredResponse>, Status> {
        let trail = audit::Trail::of(&request);
        let r = request.into_inner();
        let mut v = FieldViolations::new();
        v.check("run_id", check_request_id(&r.run_id));
        let mut rules = Vec::new();
        for (i, rule) in r.rules.iter().enumerate() {
            match rule.cutoff.as_ref().and_then(from_timestamp) {
                Some(cutoff) => {
                    if rule.category == EVENTS
                        || rule.category == CRASHES
                        || rule.category == AGGREGATES
                    {
                        rules.push((rule.category.clone(), cutoff));
                    }
                }
                None => v.add(format!("rules[{i}].cutoff"), "required, a valid time"),
            }
            if rule.category.is_empty() {
                v.add(format!("rules[{i}].category"), "required");
            }
        }
        for (i, hold) in r.holds.iter().enumerate() {
            if hold.hold_id.is_empty() {
                v.add(format!("holds[{i}].hold_id"), "required");
            }
            if !hold.subject_id.is_empty() {
                v.check(
                    &format!("holds[{i}].subject_id"),
                    hold.subject_id.parse::<SubjectId>(),
                );
            }
        }
        v.finish()?;
        let mut results = Vec::new();
        for (category, cutoff) in rules {
            let holds: Vec<_> = r
                .holds
                .iter()
                .filter(|h| h.category.is_empty() || h.category == category)
                .collect();
            let blanket = holds.iter().any(|h| h.subject_id.is_empty());
            let held: Vec<String> = holds
                .iter()
                .filter(|h| !h.subject_id.is_empty())
                .map(|h| h.subject_id.clone())
                .collect();
            let (purged, held_count) = if category == AGGREGATES {
                // Aggregates name nobody: only a hold on every subject keeps them.
                let day = crate::domain::aggregate::first_day_kept(cutoff);
                if blanket {
                    (0, self.inner.store.purge_aggregates(&day, true).await?)
                } else {
                    (self.inner.store.purge_aggregates(&day, r.dry_run).await?, 0)
                }
            } else if category == EVENTS {
                if blanket {
                    let (expired, _) = self.inner.store.purge_events(cutoff, &[], true).await?;
                    (0, expired)
                } else {
                    self.inner
                        .store
                        .purge_events(cutoff, &held, r.dry_run)
                        .await?
                }
            } else if blanket {
                let (expired, _) = self.inner.store.purge_crashes(cutoff, &[], true).await?;
                (0, expired)
            } else {
                self.inner
                    .store
                    .purge_crashes(cutoff, &held, r.dry_run)
                    .await?
            };
            tracing::info!(run_id = %r.run_id, category = %category, purged, held = held_count, dry_run = r.dry_run, "telemetry purge");
            results.push(pb::PurgeResult {
                category,
                purged,
                held: held_count,
                hold_ids: if held_count > 0 {
                    holds.iter().map(|h| h.hold_id.clone()).collect()
                } else {
                    Vec::new()
                },
            });
        }
        // The access trail's own rule (`audit.access`).
        if let Some((trail, caller)) = trail {
            results.extend(trail.purge(&r, &caller, self.inner.clock.now()).await?);
        }
        Ok(Response::new(pb::PurgeExpiredResponse { results }))
    }
}
