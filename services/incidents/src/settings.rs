//! The `[incidents]` settings section: the regime table and the DPO's contact.

use pdm_runtime::settings::{Problems, SettingsSection};
use serde::Deserialize;

use crate::domain::regime::{self, Regime};

/// Incidents-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IncidentsSettings {
    /// The regime table (`[[incidents.regimes]]`), replacing the default one (GDPR and
    /// UK GDPR, 72 hours each) when given.
    pub regimes: Vec<Regime>,
    /// The Data Protection Officer (`[incidents.dpo]`).
    pub dpo: Dpo,
    /// The data-holding services `FindAffected` asks (`services`), each needing
    /// `[services.<name>]`, as `rights.services` and `retention.services`.
    pub services: Vec<String>,
}

impl Default for IncidentsSettings {
    fn default() -> Self {
        Self {
            regimes: regime::defaults(),
            dpo: Dpo::default(),
            services: ["identity", "consent", "telemetry", "transfers"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

/// The Data Protection Officer's contact, shared with the rights service (which names
/// the DPO in every notice and access package).
pub use pdm_runtime::dpo::Dpo;

impl SettingsSection for IncidentsSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        for problem in regime::check_table(&self.regimes) {
            problems.add_named("incidents.regimes", &problem);
        }
        self.dpo.check(problems);
        if self.services.iter().any(|s| s.trim().is_empty()) {
            problems.add("incidents.services", "service names, none empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_bad_values_are_named() {
        let mut problems = Problems::new();
        IncidentsSettings::default().check(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");

        let bad = IncidentsSettings {
            regimes: vec![],
            dpo: Dpo {
                name: " ".into(),
                email: "nobody".into(),
                postal_address: String::new(),
            },
            services: Vec::new(),
        };
        let mut problems = Problems::new();
        bad.check(&mut problems);
        let found = problems
            .into_result(())
            .expect_err("three problems")
            .problems;
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "incidents.regimes",
                "incidents.dpo.name",
                "incidents.dpo.email"
            ]
        );
    }
}
