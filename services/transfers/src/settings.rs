//! The `[transfers]` settings section.

use pdm_runtime::settings::{Problems, SettingsSection};
use serde::Deserialize;

use crate::domain::adequacy::AdequacyConfig;

/// Transfers-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct TransfersSettings {
    /// Adequacy lists replacing the defaults, per regime (`[[transfers.adequacy]]`).
    pub adequacy: Vec<AdequacyConfig>,
}

impl SettingsSection for TransfersSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if let Err(problem) = crate::domain::adequacy::lists(&self.adequacy) {
            problems.add_named("transfers.adequacy", &problem);
        }
    }
}
