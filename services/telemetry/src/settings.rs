//! The `[telemetry]` settings section.

use std::time::Duration;

use pdm_runtime::settings::{Problems, SettingsSection, millis};
use serde::Deserialize;

use crate::domain::aggregate::{MAX_K, MIN_K};

/// Telemetry-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// Aggregate buckets with fewer distinct people behind them are withheld (at least
    /// [`MIN_K`], at most [`MAX_K`]). Raising it withholds buckets published under the old
    /// value (their people were counted only up to it), and the small-bucket purge then
    /// deletes them.
    pub k_threshold: u32,
    /// Days after a bucket's day during which it may still reach k people; past them a
    /// bucket short of k is deleted with its set of people (1 to [`MAX_SMALL_BUCKET_DAYS`]).
    pub small_bucket_days: u32,
    /// Days a logged-out visitor's tracking choice applies before the visitor is asked
    /// again and it is deleted (1 to [`MAX_TRACKING_CHOICE_DAYS`], 13 months).
    pub tracking_choice_days: u32,
    /// Offline IP database: a CSV of `network,country,region` rows. Empty: no location.
    pub ip_database: String,
    /// Batches processed at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_batches_in_flight: usize,
    /// Oldest event time accepted, in days.
    pub max_event_age_days: i64,
    /// How long ingestion waits for the consent watch to catch up before asking consent
    /// directly (`fence_wait_ms`).
    #[serde(rename = "fence_wait_ms", with = "millis")]
    pub fence_wait: Duration,
}

/// Longest small-bucket window: a month.
pub const MAX_SMALL_BUCKET_DAYS: u32 = 31;
/// Longest a tracking choice applies: 13 months (the usual lifetime of a cookie consent).
pub const MAX_TRACKING_CHOICE_DAYS: u32 = 395;

impl SettingsSection for TelemetrySettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if !(MIN_K..=MAX_K).contains(&self.k_threshold) {
            problems.add(
                "telemetry.k_threshold",
                format!(
                    "between {MIN_K} and {MAX_K} distinct people per bucket (policy: \"You \
                     cannot be identified from aggregate information\"; below {MIN_K} a bucket \
                     can single someone out, 0 or 1 would turn suppression off)"
                ),
            );
        }
        if !(1..=MAX_SMALL_BUCKET_DAYS).contains(&self.small_bucket_days) {
            problems.add(
                "telemetry.small_bucket_days",
                format!("between 1 and {MAX_SMALL_BUCKET_DAYS}"),
            );
        }
        if !(1..=MAX_TRACKING_CHOICE_DAYS).contains(&self.tracking_choice_days) {
            problems.add(
                "telemetry.tracking_choice_days",
                format!("between 1 and {MAX_TRACKING_CHOICE_DAYS}"),
            );
        }
    }
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            k_threshold: crate::domain::aggregate::DEFAULT_K,
            small_bucket_days: 7,
            tracking_choice_days: MAX_TRACKING_CHOICE_DAYS,
            ip_database: String::new(),
            max_batches_in_flight: 8,
            max_event_age_days: 30,
            fence_wait: Duration::from_millis(200),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys `settings` is refused for.
    fn refused(settings: &TelemetrySettings) -> Vec<String> {
        let mut problems = Problems::new();
        settings.check(&mut problems);
        problems.into_result(()).err().map_or_else(Vec::new, |e| {
            e.problems.into_iter().map(|(k, _)| k).collect()
        })
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(refused(&TelemetrySettings::default()).is_empty());
    }

    /// Policy, "aggregate information": a k below 5 is refused, naming the key.
    #[test]
    fn a_k_threshold_below_five_is_refused_aggregate_information_cannot_identify_you() {
        for k in [0, 1, 4, MAX_K + 1] {
            let settings = TelemetrySettings {
                k_threshold: k,
                ..TelemetrySettings::default()
            };
            assert_eq!(refused(&settings), ["telemetry.k_threshold"], "{k}");
        }
        for k in [MIN_K, 10, MAX_K] {
            let settings = TelemetrySettings {
                k_threshold: k,
                ..TelemetrySettings::default()
            };
            assert!(refused(&settings).is_empty(), "{k}");
        }
    }

    #[test]
    fn windows_out_of_range_are_refused() {
        for (settings, key) in [
            (
                TelemetrySettings {
                    small_bucket_days: 0,
                    ..TelemetrySettings::default()
                },
                "telemetry.small_bucket_days",
            ),
            (
                TelemetrySettings {
                    tracking_choice_days: MAX_TRACKING_CHOICE_DAYS + 1,
                    ..TelemetrySettings::default()
                },
                "telemetry.tracking_choice_days",
            ),
        ] {
            assert_eq!(refused(&settings), [key]);
        }
    }
}
