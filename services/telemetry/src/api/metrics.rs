//! Events counted for Prometheus (`pdm_telemetry_events_total{result, reason}`): what
//! IngestEvents answered, recorded once the batch is settled.

use std::sync::LazyLock;

use pdm_metrics::{Counter, Family};
use pdm_proto::telemetry::v1::{self as pb, DropReason};

use crate::error::TelemetryError;

/// `pdm_telemetry_events_total`, by result and reason.
static EVENTS: LazyLock<Family<2, Counter>> = LazyLock::new(|| {
    Family::new(
        "pdm_telemetry_events_total",
        "Telemetry events received, by result and reason.",
        ["result", "reason"],
    )
});

/// Adds the telemetry service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register(&*EVENTS);
}

/// What became of telemetry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventResult {
    /// Stored.
    Accepted,
    /// Dropped by the consent gate (the reason says why).
    Dropped,
    /// Their batch was refused (bad input, overload, an error): the caller may retry.
    Rejected,
    /// Their batch was stored before (same batch id): nothing stored again.
    Duplicate,
}

impl EventResult {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Dropped => "dropped",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The `reason` of accepted events: none.
pub const NONE: &str = "none";
/// The `reason` of the events of a batch stored before under the same batch id.
pub const SAME_BATCH: &str = "same_batch_id";

/// The `reason` label of a dropped event: the reason's name in lower snake case.
pub fn drop_reason_label(reason: DropReason) -> &'static str {
    match reason {
        DropReason::Unspecified => "unspecified",
        DropReason::NoConsent => "no_consent",
        DropReason::Withdrawn => "withdrawn",
        DropReason::Restricted => "restricted",
        DropReason::Objected => "objected",
        DropReason::Erased => "erased",
        DropReason::UnknownSubject => "unknown_subject",
        DropReason::NoTrackingConsent => "no_tracking_consent",
        DropReason::GlobalPrivacyControl => "global_privacy_control",
    }
}

/// The `reason` label of a refused batch's events.
pub fn refusal_label(err: &TelemetryError) -> &'static str {
    match err {
        TelemetryError::Invalid(_) => "invalid",
        TelemetryError::Overloaded => "overloaded",
        TelemetryError::ConsentUnavailable => "consent_unavailable",
        TelemetryError::IdentityUnavailable => "identity_unavailable",
        TelemetryError::ErasedMeanwhile(_) => "erased_meanwhile",
        TelemetryError::Db(_)
        | TelemetryError::Receipt(_)
        | TelemetryError::Keys(_)
        | TelemetryError::Crypto(_)
        | TelemetryError::Internal(_) => "error",
    }
}

/// The counts an answer to a batch of `received` events adds: its accepted events, its
/// dropped events per reason; every event of a duplicate or refused batch.
pub fn counts(
    answer: &Result<pb::IngestEventsResponse, TelemetryError>,
    received: usize,
) -> Vec<(EventResult, &'static str, u64)> {
    let received = u64::try_from(received).unwrap_or(u64::MAX);
    match answer {
        Err(err) => vec![(EventResult::Rejected, refusal_label(err), received)],
        // The first answer describes the events stored then: none were stored now.
        Ok(response) if response.duplicate => {
            vec![(EventResult::Duplicate, SAME_BATCH, received)]
        }
        Ok(response) => {
            let mut counts = Vec::with_capacity(response.dropped.len() + 1);
            counts.push((EventResult::Accepted, NONE, u64::from(response.accepted)));
            for d in &response.dropped {
                let reason = DropReason::try_from(d.reason).unwrap_or(DropReason::Unspecified);
                counts.push((
                    EventResult::Dropped,
                    drop_reason_label(reason),
                    u64::from(d.count),
                ));
            }
            counts
        }
    }
}

/// Records what an answer to a batch of `received` events adds.
pub fn record(answer: &Result<pb::IngestEventsResponse, TelemetryError>, received: usize) {
    for (result, reason, count) in counts(answer, received) {
        // A zero would create a series that never counted anything.
        if count > 0 {
            EVENTS.with([result.label(), reason], |c| c.add(count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_labels_are_the_names_in_lower_snake_case() {
        let mut number = 0;
        while let Ok(reason) = DropReason::try_from(number) {
            let name = reason.as_str_name().trim_start_matches("DROP_REASON_");
            assert_eq!(drop_reason_label(reason), name.to_ascii_lowercase());
            number += 1;
        }
        assert_eq!(number, 9, "a drop reason was added: give it its label");
    }

    #[test]
    fn an_answer_counts_its_accepted_and_dropped_events() {
        let answer = Ok(pb::IngestEventsResponse {
            accepted: 5,
            dropped: vec![
                pb::DropCount {
                    reason: DropReason::NoConsent as i32,
                    count: 2,
                },
                pb::DropCount {
                    reason: DropReason::Erased as i32,
                    count: 1,
                },
            ],
            duplicate: false,
        });
        assert_eq!(
            counts(&answer, 8),
            vec![
                (EventResult::Accepted, NONE, 5),
                (EventResult::Dropped, "no_consent", 2),
                (EventResult::Dropped, "erased", 1),
            ]
        );
    }

    #[test]
    fn a_duplicate_batch_stores_nothing_again() {
        let answer = Ok(pb::IngestEventsResponse {
            accepted: 5,
            dropped: Vec::new(),
            duplicate: true,
        });
        assert_eq!(
            counts(&answer, 5),
            vec![(EventResult::Duplicate, SAME_BATCH, 5)]
        );
    }

    #[test]
    fn a_refused_batch_counts_every_event_by_why() {
        assert_eq!(
            counts(&Err(TelemetryError::Overloaded), 3),
            vec![(EventResult::Rejected, "overloaded", 3)]
        );
        assert_eq!(
            counts(
                &Err(TelemetryError::Invalid(tonic::Status::invalid_argument(
                    "x"
                ))),
                2
            ),
            vec![(EventResult::Rejected, "invalid", 2)]
        );
        assert_eq!(
            counts(&Err(TelemetryError::Internal("boom")), 1),
            vec![(EventResult::Rejected, "error", 1)]
        );
    }
}
