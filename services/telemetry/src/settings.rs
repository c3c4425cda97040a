//! The `[telemetry]` settings section.

use serde::Deserialize;

/// Telemetry-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// Aggregate buckets below this count are withheld.
    pub k_threshold: u32,
    /// Offline IP database: a CSV of `network,country,region` rows. Empty: no location.
    pub ip_database: String,
    /// Batches processed at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_batches_in_flight: usize,
    /// Oldest event time accepted, in days.
    pub max_event_age_days: i64,
    /// How long ingestion waits for the consent watch to catch up before asking consent
    /// directly (milliseconds).
    pub fence_wait_ms: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            k_threshold: crate::domain::aggregate::DEFAULT_K,
            ip_database: String::new(),
            max_batches_in_flight: 8,
            max_event_age_days: 30,
            fence_wait_ms: 200,
        }
    }
}
