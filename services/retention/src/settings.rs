//! The `[retention]` settings section.

use std::time::Duration;

use pdm_proto::{common::v1::LegalBasis, subject::v1::RetentionTrigger};
use pdm_runtime::settings::{
    Problems, SettingsError, SettingsSection, list, millis, minutes, secs,
};
use serde::Deserialize;

use crate::domain::{
    period::Period,
    policy::{Policy, describe},
    run::parse_services,
    seed::{self, CATEGORY_RULE, is_category},
};

/// Retention-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Between scheduled purge runs (`purge_interval_minutes`); zero disables the scheduler.
    #[serde(rename = "purge_interval_minutes", with = "minutes")]
    pub purge_interval: Duration,
    /// After a partial run, before the scheduler asks the missing services again
    /// (`retry_minutes`).
    #[serde(rename = "retry_minutes", with = "minutes")]
    pub retry: Duration,
    /// How often the scheduler looks at the clock (`scheduler_tick_ms`).
    #[serde(rename = "scheduler_tick_ms", with = "millis")]
    pub scheduler_tick: Duration,
    /// The data-holding services a run asks (an array, or comma-separated); each needs
    /// `[services.<name>]`.
    #[serde(with = "list")]
    pub services: Vec<String>,
    /// Bound of one service's `PurgeExpired` call (`call_timeout_ms`).
    #[serde(rename = "call_timeout_ms", with = "millis")]
    pub call_timeout: Duration,
    /// How long the purge lease lasts before another replica may take it over
    /// (`lease_seconds`; protects against a replica that died holding it).
    #[serde(rename = "lease_seconds", with = "secs")]
    pub lease: Duration,
    /// Months usage events are kept (the seed of `telemetry.event`).
    pub telemetry_months: u32,
    /// Policies added to (or replacing) the seed (`[[retention.policies]]`).
    pub policies: Vec<PolicyConfig>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            purge_interval: Duration::from_secs(1440 * 60),
            retry: Duration::from_secs(15 * 60),
            scheduler_tick: Duration::from_secs(60),
            services: ["identity", "consent", "telemetry", "transfers"]
                .map(str::to_owned)
                .to_vec(),
            call_timeout: Duration::from_secs(30),
            lease: Duration::from_secs(900),
            telemetry_months: 13,
            policies: Vec::new(),
        }
    }
}

/// A policy from the configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct PolicyConfig {
    /// Category key.
    pub category: String,
    /// `account_closed`, `consent_withdrawn`, `event_time`, `request_completed` or `never`.
    pub trigger: String,
    /// Years.
    pub years: i32,
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// `consent`, `contract`, `legal_obligation`, `vital_interests`, `public_task` or
    /// `legitimate_interests`.
    pub legal_basis: String,
    /// The rule in words; empty: generated from the period and trigger.
    pub description: String,
}

/// The checked settings a running service uses.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Between scheduled runs; `None` when the scheduler is off.
    pub interval: Option<chrono::Duration>,
    /// Before a partial run is retried.
    pub retry_after: chrono::Duration,
    /// Scheduler tick.
    pub tick: Duration,
    /// Services a run asks.
    pub services: Vec<String>,
    /// Bound of one call.
    pub call_timeout: Duration,
    /// Lease length.
    pub lease: chrono::Duration,
    /// Seed and configured policies, one per category.
    pub policies: Vec<Policy>,
}

/// A year, the longest of the minute-valued keys.
const YEAR: Duration = Duration::from_secs(525_600 * 60);

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl SettingsSection for RetentionSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if let Err(err) = self.resolve() {
            problems.extend(err);
        }
    }
}

impl RetentionSettings {
    /// Checks every key, reporting every problem together, and resolves the settings a
    /// running service uses.
    pub fn resolve(&self) -> Result<Checked, SettingsError> {
        let mut problems = Vec::new();
        let mut bad = |key: String, problem: String| problems.push((key, problem));
        // A year at most between runs; a run every few seconds would only load the mesh.
        if self.purge_interval > YEAR {
            bad(
                "retention.purge_interval_minutes".into(),
                "0 (off) to 525600 (a year)".into(),
            );
        }
        if !(Duration::from_secs(60)..=YEAR).contains(&self.retry) {
            bad("retention.retry_minutes".into(), "1 to 525600".into());
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&self.scheduler_tick) {
            bad("retention.scheduler_tick_ms".into(), "10 to 3600000".into());
        }
        // The list is checked as the comma-separated form it replaces: no empty items.
        let services = match parse_services(&self.services.join(",")) {
            Ok(services) => services,
            Err(problem) => {
                bad("retention.services".into(), problem);
                Vec::new()
            }
        };
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.call_timeout) {
            bad("retention.call_timeout_ms".into(), "100 to 600000".into());
        }
        // The lease must outlast a run: the calls run in parallel, each bounded.
        if self.lease < self.call_timeout.saturating_mul(2)
            || self.lease > Duration::from_secs(86_400)
        {
            bad(
                "retention.lease_seconds".into(),
                "at least twice retention.call_timeout_ms, at most 86400".into(),
            );
        }
        if !(1..=1200).contains(&self.telemetry_months) {
            bad("retention.telemetry_months".into(), "1 to 1200".into());
        }
        let mut policies = seed::policies(self.telemetry_months.clamp(1, 1200));
        let mut configured: Vec<String> = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            let at = format!("retention.policies[{i}]");
            match policy(p) {
                Ok(policy) if configured.contains(&policy.category) => bad(
                    format!("{at}.category"),
                    format!("{} is configured twice", policy.category),
                ),
                Ok(policy) => {
                    configured.push(policy.category.clone());
                    policies.retain(|s| s.category != policy.category);
                    policies.push(policy);
                }
                Err((field, problem)) => bad(format!("{at}.{field}"), problem),
            }
        }
        if policies.len() > crate::MAX_POLICIES {
            bad(
                "retention.policies".into(),
                format!("at most {} policies in all", crate::MAX_POLICIES),
            );
        }
        if !problems.is_empty() {
            return Err(SettingsError { problems });
        }
        Ok(Checked {
            interval: (!self.purge_interval.is_zero()).then(|| chrono(self.purge_interval)),
            retry_after: chrono(self.retry),
            tick: self.scheduler_tick,
            services,
            call_timeout: self.call_timeout,
            lease: chrono(self.lease),
            policies,
        })
    }
}

/// A configured policy, or the field at fault and why.
fn policy(p: &PolicyConfig) -> Result<Policy, (&'static str, String)> {
    if !is_category(&p.category) {
        return Err(("category", CATEGORY_RULE.to_owned()));
    }
    let trigger = RetentionTrigger::from_str_name(&format!(
        "RETENTION_TRIGGER_{}",
        p.trigger.to_ascii_uppercase()
    ))
    .filter(|t| *t != RetentionTrigger::Unspecified)
    .ok_or((
        "trigger",
        "account_closed, consent_withdrawn, event_time, request_completed or never".to_owned(),
    ))?;
    let period = Period::parse(p.years, p.months, p.days).map_err(|e| ("years", e.to_owned()))?;
    if trigger == RetentionTrigger::Never && !period.is_zero() {
        return Err((
            "years",
            "a policy kept without limit has no period".to_owned(),
        ));
    }
    let legal_basis = LegalBasis::from_str_name(&format!(
        "LEGAL_BASIS_{}",
        p.legal_basis.to_ascii_uppercase()
    ))
    .filter(|b| *b != LegalBasis::Unspecified)
    .ok_or((
        "legal_basis",
        "consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests"
            .to_owned(),
    ))?;
    let description = pdm_runtime::text::TextRule::line(crate::MAX_TEXT)
        .optional(&p.description)
        .map_err(|problem| ("description", problem.to_string()))?;
    let description = description.as_str();
    Ok(Policy {
        category: p.category.clone(),
        period,
        trigger,
        legal_basis,
        description: if description.is_empty() {
            describe(period, trigger)
        } else {
            description.to_owned()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        let checked = RetentionSettings::default().resolve().expect("defaults");
        assert_eq!(checked.interval, Some(chrono::Duration::days(1)));
        assert_eq!(
            checked.services,
            ["identity", "consent", "telemetry", "transfers"]
        );
        assert_eq!(checked.policies.len(), seed::policies(13).len());
    }

    #[test]
    fn configured_policies_extend_or_replace_the_seed_and_every_problem_is_named() {
        let settings = RetentionSettings {
            purge_interval: Duration::ZERO,
            policies: vec![
                PolicyConfig {
                    category: "hr.application".into(),
                    trigger: "request_completed".into(),
                    months: 6,
                    legal_basis: "legitimate_interests".into(),
                    ..PolicyConfig::default()
                },
                PolicyConfig {
                    category: "billing.record".into(),
                    trigger: "account_closed".into(),
                    years: 10,
                    legal_basis: "legal_obligation".into(),
                    ..PolicyConfig::default()
                },
            ],
            ..RetentionSettings::default()
        };
        let checked = settings.resolve().expect("valid");
        assert_eq!(checked.interval, None);
        let find = |key: &str| checked.policies.iter().find(|p| p.category == key);
        let hr = find("hr.application").expect("added");
        assert_eq!(hr.description, "6 months after the request is completed");
        assert_eq!(
            find("billing.record").map(|p| p.period),
            Some(Period::years(10))
        );

        let bad = RetentionSettings {
            services: vec!["identity".into(), "identity".into()],
            lease: Duration::from_secs(1),
            policies: vec![
                PolicyConfig {
                    category: "Bad Key".into(),
                    ..PolicyConfig::default()
                },
                PolicyConfig {
                    category: "x.y".into(),
                    trigger: "never".into(),
                    years: 1,
                    legal_basis: "consent".into(),
                    ..PolicyConfig::default()
                },
                PolicyConfig {
                    category: "x.z".into(),
                    trigger: "event_time".into(),
                    legal_basis: "vibes".into(),
                    ..PolicyConfig::default()
                },
            ],
            ..RetentionSettings::default()
        };
        let keys: Vec<String> = bad
            .resolve()
            .expect_err("invalid")
            .problems
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "retention.services",
                "retention.lease_seconds",
                "retention.policies[0].category",
                "retention.policies[1].years",
                "retention.policies[2].legal_basis",
            ]
        );
    }
}
