//! The `[consent]` settings section.

use std::time::Duration;

use pdm_runtime::settings::{Problems, SettingsSection, millis, secs};
use serde::Deserialize;

use crate::domain::{
    catalogue::PurposeConfig,
    unsubscribe::{DEFAULT_VALID_DAYS, MAX_VALID_DAYS},
};

/// Consent-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsentSettings {
    /// How long a subject's region, learned from identity, is trusted (`region_ttl_secs`).
    #[serde(rename = "region_ttl_secs", with = "secs")]
    pub region_ttl: Duration,
    /// How long "identity does not know this subject" is remembered (`unknown_ttl_secs`).
    #[serde(rename = "unknown_ttl_secs", with = "secs")]
    pub unknown_ttl: Duration,
    /// Most subjects kept in the decision cache.
    pub cache_capacity: usize,
    /// How often the ledger is read for changes made by other replicas (`tail_interval_ms`).
    #[serde(rename = "tail_interval_ms", with = "millis")]
    pub tail_interval: Duration,
    /// Longest a check given a consistency token waits for this replica to apply the
    /// ledger up to it (`token_wait_ms`, 1 to 60,000), when the call's deadline is later.
    #[serde(rename = "token_wait_ms", with = "millis")]
    pub token_wait: Duration,
    /// Purposes added to the policy's seed catalogue.
    pub purposes: Vec<PurposeConfig>,
    /// How long an unsubscribe link works after it is issued (days, 1 to 365).
    pub unsubscribe_link_days: u32,
}

impl SettingsSection for ConsentSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if let Err(problem) = crate::domain::catalogue::Catalogue::new(&self.purposes) {
            problems.add_named("consent.purposes", &problem);
        }
        if self.token_wait.is_zero() || self.token_wait > Duration::from_secs(60) {
            problems.add("consent.token_wait_ms", "between 1 and 60000");
        }
        if !(1..=MAX_VALID_DAYS).contains(&self.unsubscribe_link_days) {
            problems.add(
                "consent.unsubscribe_link_days",
                format!("between 1 and {MAX_VALID_DAYS}"),
            );
        }
    }
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            region_ttl: Duration::from_secs(3600),
            unknown_ttl: Duration::from_secs(30),
            cache_capacity: 1_000_000,
            tail_interval: Duration::from_millis(500),
            token_wait: Duration::from_secs(5),
            purposes: Vec::new(),
            unsubscribe_link_days: DEFAULT_VALID_DAYS,
        }
    }
}
