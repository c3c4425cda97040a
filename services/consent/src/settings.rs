//! The `[consent]` settings section.

use serde::Deserialize;

use crate::domain::catalogue::PurposeConfig;

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
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            region_ttl_secs: 3600,
            unknown_ttl_secs: 30,
            cache_capacity: 1_000_000,
            tail_interval_ms: 500,
            purposes: Vec::new(),
        }
    }
}
