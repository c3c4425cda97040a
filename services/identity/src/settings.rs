//! The `[identity]` settings section.

use std::time::Duration;

use pdm_runtime::settings::{Problems, SettingsSection, minutes};
use serde::Deserialize;

/// Identity-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentitySettings {
    /// How long a session lasts (`session_ttl_minutes`).
    #[serde(rename = "session_ttl_minutes", with = "minutes")]
    pub session_ttl: Duration,
    /// Removed: how long archived billing records are kept is the retention service's
    /// policy `billing.record` alone (one source of truth, changed with UpsertPolicy). A
    /// configuration that still sets this key is refused at start rather than ignored, so
    /// nobody believes it still decides anything.
    #[serde(rename = "billing_retention_years")]
    pub removed_billing_retention_years: Option<i64>,
    /// How DeleteAccount erases: "rights" sends an erasure request to the rights service,
    /// which reaches every service (and erases here with the same request id); "local"
    /// erases only this service's data (identity running without the rest of the mesh).
    pub deletion: String,
    /// Password hashes computed at once (argon2id, 19 MiB each); 0: one per core.
    pub hash_workers: usize,
    /// Sign-ins waiting for a hashing worker before more are refused (RESOURCE_EXHAUSTED).
    pub hash_queue: usize,
}

/// Most hashing workers accepted (each holds 19 MiB while busy).
pub const MAX_HASH_WORKERS: usize = 64;
/// Longest hashing queue accepted.
pub const MAX_HASH_QUEUE: usize = 10_000;
/// Bounds of `identity.session_ttl_minutes`: a minute to a year.
const SESSION_TTL: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(365 * 86_400);

impl IdentitySettings {
    /// How long a session lasts (checked at start to be within [`SESSION_TTL`]).
    pub fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.session_ttl.min(*SESSION_TTL.end()))
            .unwrap_or(chrono::Duration::days(1))
    }
}

impl SettingsSection for IdentitySettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if self.removed_billing_retention_years.is_some() {
            problems.add(
                "identity.billing_retention_years",
                "removed; the retention service's policy billing.record decides how long \
                 billing records are kept (UpsertPolicy or [[retention.policies]])",
            );
        }
        if !SESSION_TTL.contains(&self.session_ttl) {
            problems.add(
                "identity.session_ttl_minutes",
                "1 to 525600 (a minute to a year)",
            );
        }
        if self.hash_workers > MAX_HASH_WORKERS {
            problems.add(
                "identity.hash_workers",
                format!("at most {MAX_HASH_WORKERS} (0 = one per core)"),
            );
        }
        if self.hash_queue == 0 || self.hash_queue > MAX_HASH_QUEUE {
            problems.add(
                "identity.hash_queue",
                format!("between 1 and {MAX_HASH_QUEUE}"),
            );
        }
    }
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(24 * 60 * 60),
            removed_billing_retention_years: None,
            deletion: "rights".to_owned(),
            hash_workers: 0,
            hash_queue: 128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(settings: &IdentitySettings) -> Vec<(String, String)> {
        let mut problems = Problems::new();
        settings.check(&mut problems);
        problems
            .into_result(())
            .err()
            .map_or_else(Vec::new, |e| e.problems)
    }

    #[test]
    fn the_removed_billing_period_is_refused_naming_where_it_lives_now() {
        assert!(problems(&IdentitySettings::default()).is_empty());
        let stale = IdentitySettings {
            removed_billing_retention_years: Some(8),
            ..IdentitySettings::default()
        };
        let found = problems(&stale);
        assert!(
            found.len() == 1
                && found[0].0 == "identity.billing_retention_years"
                && found[0].1.contains("billing.record"),
            "{found:?}"
        );
    }

    #[test]
    fn the_session_lifetime_is_a_duration_in_minutes_and_checked() {
        let defaults = IdentitySettings::default();
        assert_eq!(defaults.session_lifetime(), chrono::Duration::minutes(1440));
        let settings =
            pdm_runtime::Settings::with_overrides([("identity.session_ttl_minutes", "5")])
                .expect("runtime settings");
        let five = settings.checked::<IdentitySettings>().expect("valid");
        assert_eq!(five.session_ttl, Duration::from_secs(300));
        for bad in [0, 525_601] {
            let settings = IdentitySettings {
                session_ttl: Duration::from_secs(bad * 60),
                hash_queue: 0,
                ..IdentitySettings::default()
            };
            let keys: Vec<String> = problems(&settings).into_iter().map(|(k, _)| k).collect();
            assert_eq!(
                keys,
                ["identity.session_ttl_minutes", "identity.hash_queue"],
                "{bad}"
            );
        }
    }
}
