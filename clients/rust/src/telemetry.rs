//! The telemetry service as typed calls: usage events (admitted only with the subject's
//! or the visitor's agreement), crash reports, cookie-banner choices and k-anonymous
//! aggregates, errors as [`PdmError`] (a bad event is `InvalidArgument` naming it, e.g.
//! `events[2].feature`, and refuses the whole batch).

use std::time::{Duration, SystemTime};

use pdm_proto::telemetry::v1::{
    self as pb, EventKind, telemetry_service_client::TelemetryServiceClient,
};
/// How the device was connected; why an event was not stored; what aggregates group by;
/// what a tracking technology is for; the device an event came from, as generated.
pub use pdm_proto::telemetry::v1::{
    ConnectionType, DeviceContext, Dimension, DropReason, TrackingCategory,
};
use tonic::transport::Channel;

use crate::{
    call::{Stub, missing, nonempty, time},
    error::PdmError,
    retry::{Idempotence, RetryPolicy},
};

/// What happened, with what the kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// A feature was used.
    FeatureUsed(String),
    /// A link was clicked (query and fragment are stripped on the way in).
    LinkClicked(String),
    /// An interaction with another user, by subject id (stored as a keyed hash).
    Interaction(String),
    /// A page or screen was viewed.
    PageView(String),
}

/// One usage event.
#[derive(Debug, Clone)]
pub struct Event {
    /// The subject; `None` for a logged-out visitor (admitted under the device's
    /// tracking choice).
    pub subject_id: Option<String>,
    /// What happened.
    pub happened: Happened,
    /// When (at most 30 days ago, 5 minutes ahead).
    pub occurred_at: SystemTime,
    /// The device it came from.
    pub device: Option<DeviceContext>,
    /// What the tracking is for (`Unspecified` counts as analytics).
    pub tracking: TrackingCategory,
}

impl Event {
    /// A logged-in subject's analytics event, now.
    pub fn of(subject_id: impl Into<String>, happened: Happened) -> Self {
        Self {
            subject_id: Some(subject_id.into()),
            happened,
            occurred_at: SystemTime::now(),
            device: None,
            tracking: TrackingCategory::Analytics,
        }
    }

    fn to_pb(&self) -> pb::Event {
        let mut event = pb::Event {
            subject_id: self.subject_id.clone().unwrap_or_default(),
            occurred_at: Some(self.occurred_at.into()),
            device: self.device.clone(),
            tracking: self.tracking as i32,
            ..pb::Event::default()
        };
        let kind = match &self.happened {
            Happened::FeatureUsed(feature) => {
                event.feature = feature.clone();
                EventKind::FeatureUsed
            }
            Happened::LinkClicked(url) => {
                event.link_url = url.clone();
                EventKind::LinkClicked
            }
            Happened::Interaction(peer) => {
                event.peer_subject_id = peer.clone();
                EventKind::Interaction
            }
            Happened::PageView(screen) => {
                event.screen = screen.clone();
                EventKind::PageView
            }
        };
        event.kind = kind as i32;
        event
    }
}

/// What happened to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Events stored (committed).
    pub accepted: u32,
    /// Events dropped, per reason.
    pub dropped: Vec<(DropReason, u32)>,
    /// The batch id was stored before: this is the first answer again.
    pub duplicate: bool,
}

/// A crash report.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The subject, if known.
    pub subject_id: Option<String>,
    /// Error type, e.g. `NullPointerException` (1-256 characters).
    pub error_type: String,
    /// Message (at most 4 KiB; scrubbed of personal data).
    pub message: String,
    /// Stack trace (at most 64 KiB; scrubbed).
    pub stack_trace: String,
    /// When it happened.
    pub occurred_at: SystemTime,
    /// The device.
    pub device: Option<DeviceContext>,
}

/// What became of a crash report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReceipt {
    /// The stored report's id; `None` when nothing was stored (see `dropped`).
    pub crash_id: Option<String>,
    /// Pieces of personal data scrubbed.
    pub scrubbed: u32,
    /// Why nothing was stored (the subject objected, or is restricted).
    pub dropped: Option<DropReason>,
}

/// A logged-out visitor's answer to the cookie banner, to record.
#[derive(Debug, Clone)]
pub struct ChoiceMade {
    /// The device identifier the events carry (only its keyed hash is stored).
    pub device_id: String,
    /// Analytics agreed to.
    pub analytics: bool,
    /// Advertising agreed to.
    pub advertising: bool,
    /// The request carried a Global Privacy Control signal.
    pub global_privacy_control: bool,
    /// Version of the cookie policy shown (1-32 characters).
    pub policy_version: String,
    /// SHA-256 (hex) of the banner text shown.
    pub text_hash: String,
}

/// A device's tracking choice as it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingChoice {
    /// Analytics agreed to.
    pub analytics: bool,
    /// Advertising agreed to, as recorded.
    pub advertising: bool,
    /// A Global Privacy Control signal came with the choice.
    pub global_privacy_control: bool,
    /// Advertising as applied: agreed to and no GPC signal.
    pub advertising_effective: bool,
    /// Version of the cookie policy shown.
    pub policy_version: String,
    /// SHA-256 (hex) of the banner text shown.
    pub text_hash: String,
    /// When it was recorded.
    pub recorded_at: Option<SystemTime>,
    /// When it lapses (the visitor is asked again).
    pub expires_at: Option<SystemTime>,
}

impl TrackingChoice {
    fn from_pb(choice: Option<pb::TrackingChoice>) -> Result<Self, PdmError> {
        let c = choice.ok_or_else(|| missing("choice"))?;
        Ok(Self {
            analytics: c.analytics,
            advertising: c.advertising,
            global_privacy_control: c.global_privacy_control,
            advertising_effective: c.advertising_effective,
            policy_version: c.policy_version,
            text_hash: c.text_hash,
            recorded_at: time(c.recorded_at),
            expires_at: time(c.expires_at),
        })
    }
}

/// One day's count for one value, published because at least k people are behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Day (YYYY-MM-DD).
    pub day: String,
    /// The dimension's value, e.g. `FEATURE_USED`, `export`, `GB`.
    pub value: String,
    /// Events.
    pub count: u64,
}

/// Daily counts from [`TelemetryClient::query_aggregates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregates {
    /// Buckets at or above the threshold, by day then value.
    pub buckets: Vec<Bucket>,
    /// Buckets withheld for having fewer than k people behind them.
    pub suppressed: u32,
    /// The k applied (distinct people per bucket).
    pub k_threshold: u32,
}

/// The telemetry service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TelemetryClient {
    stub: Stub<TelemetryServiceClient<Channel>>,
}

impl TelemetryClient {
    /// Calls over `channel`, each within `timeout` (retries included).
    pub fn new(channel: Channel, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            stub: Stub::new(TelemetryServiceClient::new(channel), timeout, retry),
        }
    }

    /// Stores a batch of at most 1,000 events under `batch_id` (1-128 printable ASCII),
    /// its idempotency key: a retried batch is stored once, so retries are safe.
    pub async fn ingest_events(
        &self,
        batch_id: &str,
        events: &[Event],
    ) -> Result<Ingested, PdmError> {
        let message = pb::IngestEventsRequest {
            batch_id: batch_id.to_owned(),
            events: events.iter().map(Event::to_pb).collect(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.ingest_events(r).await
            })
            .await?;
        Ok(Ingested {
            accepted: r.accepted,
            dropped: r.dropped.iter().map(|d| (d.reason(), d.count)).collect(),
            duplicate: r.duplicate,
        })
    }

    /// Stores a crash report, scrubbed (no idempotency key: not retried after
    /// UNAVAILABLE).
    pub async fn report_crash(&self, crash: &Crash) -> Result<CrashReceipt, PdmError> {
        let message = pb::ReportCrashRequest {
            subject_id: crash.subject_id.clone().unwrap_or_default(),
            error_type: crash.error_type.clone(),
            message: crash.message.clone(),
            stack_trace: crash.stack_trace.clone(),
            occurred_at: Some(crash.occurred_at.into()),
            device: crash.device.clone(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.report_crash(r).await
            })
            .await?;
        let dropped = r.dropped();
        Ok(CrashReceipt {
            crash_id: nonempty(r.crash_id),
            scrubbed: r.scrubbed,
            dropped: (dropped != DropReason::Unspecified).then_some(dropped),
        })
    }

    /// Records a visitor's cookie-banner choice (each call is a new choice and the latest
    /// counts: not retried after UNAVAILABLE).
    pub async fn record_tracking_choice(
        &self,
        choice: &ChoiceMade,
    ) -> Result<TrackingChoice, PdmError> {
        let message = pb::RecordTrackingChoiceRequest {
            device_id: choice.device_id.clone(),
            analytics: choice.analytics,
            advertising: choice.advertising,
            global_privacy_control: choice.global_privacy_control,
            policy_version: choice.policy_version.clone(),
            text_hash: choice.text_hash.clone(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.record_tracking_choice(r).await
            })
            .await?;
        TrackingChoice::from_pb(r.choice)
    }

    /// A device's current choice; `None` when none was recorded or it lapsed (only
    /// strictly necessary tracking then).
    pub async fn get_tracking_choice(
        &self,
        device_id: &str,
    ) -> Result<Option<TrackingChoice>, PdmError> {
        let message = pb::GetTrackingChoiceRequest {
            device_id: device_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_tracking_choice(r).await
            })
            .await?;
        if !r.found {
            return Ok(None);
        }
        TrackingChoice::from_pb(r.choice).map(Some)
    }

    /// Daily event counts by `dimension` from `from_day` to `to_day` (YYYY-MM-DD, at most
    /// 366 days apart), only of buckets at least k people contributed to.
    pub async fn query_aggregates(
        &self,
        dimension: Dimension,
        from_day: &str,
        to_day: &str,
    ) -> Result<Aggregates, PdmError> {
        let message = pb::QueryAggregatesRequest {
            dimension: dimension as i32,
            from_day: from_day.to_owned(),
            to_day: to_day.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.query_aggregates(r).await
            })
            .await?;
        Ok(Aggregates {
            buckets: r
                .buckets
                .into_iter()
                .map(|b| Bucket {
                    day: b.day,
                    value: b.value,
                    count: b.count,
                })
                .collect(),
            suppressed: r.suppressed,
            k_threshold: r.k_threshold,
        })
    }
}
