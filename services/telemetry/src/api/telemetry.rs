//! `pdm.telemetry.v1.TelemetryService`.

use chrono::NaiveDate;
use pdm_proto::telemetry::v1::{
    self as pb, Dimension, DropReason, telemetry_service_server::TelemetryService,
};
use pdm_runtime::{FieldViolations, SubjectId, convert::from_timestamp};
use pdm_tls::identity::Caller;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::{TelemetryApi, metrics, requests};
use crate::{
    domain::aggregate::{Bucket, suppress},
    error::TelemetryError,
    gate,
    store::entities::crash,
};

const F_CRASH: &str = "crashes.payload";
/// Longest crash message.
const MAX_MESSAGE: usize = 4 * 1024;
/// Longest stack trace.
const MAX_STACK: usize = 64 * 1024;

#[tonic::async_trait]
impl TelemetryService for TelemetryApi {
    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let request = request.into_inner();
        let received = request.events.len();
        let answer = self.ingest(request, caller.as_ref()).await;
        metrics::record(&answer, received);
        Ok(Response::new(answer?))
    }

    async fn report_crash(
        &self,
        request: Request<pb::ReportCrashRequest>,
    ) -> Result<Response<pb::ReportCrashResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let now = self.inner.clock.now();
        let mut v = FieldViolations::new();
        let subject = if r.subject_id.is_empty() {
            None
        } else {
            v.check("subject_id", r.subject_id.parse::<SubjectId>())
                .map(|s| s.to_string())
        };
        let error_type = r.error_type.trim();
        if error_type.is_empty() || error_type.chars().count() > requests::MAX_TEXT {
            v.add("error_type", "required, at most 256 characters");
        }
        if r.message.len() > MAX_MESSAGE {
            v.add("message", "at most 4 KiB");
        }
        if r.stack_trace.len() > MAX_STACK {
            v.add("stack_trace", "at most 64 KiB");
        }
        let occurred_at = match r.occurred_at.as_ref().map(from_timestamp) {
            Some(Some(t)) if t <= now + chrono::Duration::minutes(5) => Some(t),
            Some(_) => {
                v.add("occurred_at", "a valid time, not in the future");
                None
            }
            None => Some(now),
        };
        // The device context goes through the same minimisation as events'.
        let device = match &r.device {
            Some(d) => {
                let probe = pb::IngestEventsRequest {
                    batch_id: "crash".into(),
                    events: vec![pb::Event {
                        kind: pb::EventKind::PageView as i32,
                        screen: "crash".into(),
                        occurred_at: Some(pdm_runtime::convert::timestamp(now)),
                        device: Some(d.clone()),
                        ..Default::default()
                    }],
                };
                match requests::batch(&probe, now, chrono::Duration::days(1), &self.inner.geo) {
                    Ok(mut clean) => clean.pop().and_then(|e| e.details.device),
                    Err(TelemetryError::Invalid(status)) => {
                        use pdm_runtime::tonic_types::StatusExt;
                        for f in status
                            .get_details_bad_request()
                            .map(|b| b.field_violations)
                            .unwrap_or_default()
                        {
                            v.add(f.field.replace("events[0].", ""), f.description);
                        }
                        None
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            None => None,
        };
        v.finish()?;
        // A subject the caller may not see is not tied to the report: it is kept as one
        // naming nobody, the same answer as for a subject that does not exist.
        let subject = match subject {
            Some(s) if self.visible(caller.as_ref(), &s).await? => Some(s),
            _ => None,
        };
        // Policy, "For Customer Support": crash reports are analysed to fix problems, on
        // legitimate interests (purpose "crash_reports"), so no analytics consent is
        // needed; but a subject may object (GDPR Art. 21), and a restricted subject's data
        // is not processed: then nothing is stored. Erased subjects are handled below.
        if let Some(s) = subject.as_deref()
            && !self.is_suppressed(s)
        {
            let verdict = if self.is_restricted(s) {
                Err(DropReason::Restricted)
            } else {
                self.inner
                    .gate
                    .judge(&[s.to_owned()], gate::CRASH_REPORTS)
                    .await?
                    .remove(s)
                    .unwrap_or(Err(DropReason::NoConsent))
            };
            match verdict {
                Ok(_) | Err(DropReason::UnknownSubject) => {}
                Err(reason) => {
                    tracing::debug!(reason = reason.as_str_name(), "crash report not stored");
                    return Ok(Response::new(pb::ReportCrashResponse {
                        crash_id: String::new(),
                        scrubbed: 0,
                        dropped: reason as i32,
                    }));
                }
            }
        }
        // Scrubbed before anything is stored.
        let scrubber = &self.inner.scrubber;
        let (message, scrubbed_message) = scrubber.scrub(&r.message);
        let (stack, scrubbed_stack) = scrubber.scrub(&r.stack_trace);
        let (error_type, scrubbed_type) = scrubber.scrub(error_type);
        let payload = serde_json::to_vec(
            &json!({ "message": message, "stack_trace": stack, "device": device }),
        )
        .map_err(|_| TelemetryError::Internal("crash encoding"))?;
        let crash_id = uuid::Uuid::now_v7().to_string();
        let row = |subject_id: Option<String>, payload: Vec<u8>| crash::Model {
            crash_id: crash_id.clone(),
            sealed: subject_id.is_some(),
            subject_id,
            error_type: error_type.clone(),
            payload,
            occurred_at: occurred_at.unwrap_or(now),
            received_at: now,
        };
        // An erased subject's late crash report keeps no link to them (also when the
        // erasure races this report: the write finds it and stores nothing).
        let tied = match subject {
            Some(s) if !self.is_suppressed(&s) => {
                let stored = match self.key(&s).await {
                    Ok(key) => {
                        let sealed = key.seal(F_CRASH, &payload).map_err(TelemetryError::from)?;
                        self.inner.store.insert_crash(row(Some(s), sealed)).await
                    }
                    Err(e) => Err(e),
                };
                match stored {
                    Ok(()) => true,
                    Err(TelemetryError::ErasedMeanwhile(erased)) => {
                        self.forget_erased(&erased).await?;
                        false
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            _ => false,
        };
        if !tied {
            self.inner.store.insert_crash(row(None, payload)).await?;
        }
        Ok(Response::new(pb::ReportCrashResponse {
            crash_id,
            scrubbed: scrubbed_message + scrubbed_stack + scrubbed_type,
            dropped: DropReason::Unspecified as i32,
        }))
    }

    async fn record_tracking_choice(
        &self,
        request: Request<pb::RecordTrackingChoiceRequest>,
    ) -> Result<Response<pb::RecordTrackingChoiceResponse>, Status> {
        Ok(Response::new(
            self.record_choice(request.into_inner()).await?,
        ))
    }

    async fn get_tracking_choice(
        &self,
        request: Request<pb::GetTrackingChoiceRequest>,
    ) -> Result<Response<pb::GetTrackingChoiceResponse>, Status> {
        Ok(Response::new(self.get_choice(request.get_ref()).await?))
    }

    async fn query_aggregates(
        &self,
        request: Request<pb::QueryAggregatesRequest>,
    ) -> Result<Response<pb::QueryAggregatesResponse>, Status> {
        let r = request.get_ref();
        let mut v = FieldViolations::new();
        let dimension = match Dimension::try_from(r.dimension) {
            Ok(Dimension::Unspecified) => {
                v.add("dimension", "required");
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                v.add("dimension", "unknown dimension");
                None
            }
        };
        let day = |field: &str, raw: &str, v: &mut FieldViolations| {
            v.check(
                field,
                NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .map_err(|_| "must be a date as YYYY-MM-DD"),
            )
        };
        let from = day("from_day", &r.from_day, &mut v);
        let to = day("to_day", &r.to_day, &mut v);
        if let (Some(from), Some(to)) = (from, to)
            && (to < from || (to - from).num_days() > 366)
        {
            v.add("to_day", "on or after from_day, at most 366 days later");
        }
        v.finish()?;
        let dimension = dimension.ok_or(TelemetryError::Internal("validated dimension missing"))?;
        let name = dimension.as_str_name().trim_start_matches("DIMENSION_");
        let rows = self
            .inner
            .store
            .aggregates(name, &r.from_day, &r.to_day)
            .await?;
        let k = self.inner.settings.k_threshold;
        let (shown, suppressed) = suppress(
            rows.into_iter()
                .map(|row| {
                    let bucket = Bucket {
                        events: u64::try_from(row.count).unwrap_or(0),
                        people: u64::try_from(row.people).unwrap_or(0),
                    };
                    ((row.day, row.value), bucket)
                })
                .collect(),
            k,
        );
        Ok(Response::new(pb::QueryAggregatesResponse {
            buckets: shown
                .into_iter()
                .map(|((day, value), count)| pb::AggregateBucket { day, value, count })
                .collect(),
            suppressed,
            k_threshold: k,
        }))
    }
}

/// Opens a sealed crash payload.
pub fn open_crash(
    key: &pdm_crypto::DataKey,
    payload: &[u8],
) -> crate::error::Result<serde_json::Value> {
    let bytes = key.open(F_CRASH, payload)?;
    serde_json::from_slice(&bytes).map_err(|_| TelemetryError::Internal("crash decoding"))
}
