//! The `[transfers]` settings section.

use serde::Deserialize;

use crate::domain::adequacy::AdequacyConfig;

/// Transfers-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct TransfersSettings {
    /// Adequacy lists replacing the defaults, per regime (`[[transfers.adequacy]]`).
    pub adequacy: Vec<AdequacyConfig>,
}
