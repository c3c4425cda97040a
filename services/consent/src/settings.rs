//! The `[consent]` settings section.

use serde::Deserialize;

use crate::domain::{
    catalogue::PurposeConfig,
    unsubscribe::{DEFAULT_VALID_DAYS, MAX_VALID_DAYS},
};

/// Consent-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsentSettings {
    /// How long a subject's region, learned from identity, is trusted (seconds).
    pub region_ttl_secs: u64,
    /// How long "identity does not know this subject" is remembered (seconds).
    pub unknown_ttl_secs: u64,
    /// Most subjects kept in the decision cache.
    pub cache_capacity: usize,
    /// How often the ledger is read for changes made by other replicas (milliseconds).
    pub tail_interval_ms: u64,
    /// Purposes added to the policy's seed catalogue.
    pub purposes: Vec<PurposeConfig>,
    /// How long an unsubscribe link works after it is issued (days, 1 to 365).
    pub unsubscribe_link_days: u32,
}

impl ConsentSettings {
    /// Refuses values out of range, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=MAX_VALID_DAYS).contains(&self.unsubscribe_link_days) {
            anyhow::bail!("consent.unsubscribe_link_days: between 1 and {MAX_VALID_DAYS}");
        }
        Ok(())
    }
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            region_ttl_secs: 3600,
            unknown_ttl_secs: 30,
            cache_capacity: 1_000_000,
            tail_interval_ms: 500,
            purposes: Vec::new(),
            unsubscribe_link_days: DEFAULT_VALID_DAYS,
        }
    }
}
