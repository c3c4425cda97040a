//! The `[retention]` settings section.

use std::time::Duration;

use pdm_proto::{common::v1::LegalBasis, subject::v1::RetentionTrigger};
use pdm_runtime::settings::SettingsError;
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
    /// Minutes between scheduled purge runs; 0 disables the scheduler.
    pub purge_interval_minutes: u64,
    /// Minutes after a partial run before the scheduler asks the missing services again.
    pub retry_minutes: u64,
    /// How often the scheduler looks at the clock, in milliseconds.
    pub scheduler_tick_ms: u64,
    /// The data-holding services a run asks, comma-separated; each needs `[services.<name>]`.
    pub services: String,
    /// Bound of one service's `PurgeExpired` call, in milliseconds.
    pub call_timeout_ms: u64,
    /// How long the purge lease lasts before another replica may take it over, in seconds
    /// (protects against a replica that died holding it).
    pub lease_seconds: u64,
    /// Months usage events are kept (the seed of `telemetry.event`).
    pub telemetry_months: u32,
    /// Policies added to (or replacing) the seed (`[[retention.policies]]`).
    pub policies: Vec<PolicyConfig>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            purge_interval_minutes: 1440,
            retry_minutes: 15,
            scheduler_tick_ms: 60_000,
            services: "identity,consent,telemetry,transfers".to_owned(),
            call_timeout_ms: 30_000,
            lease_seconds: 900,
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

fn minutes(n: u64) -> chrono::Duration {
    chrono::Duration::minutes(i64::try_from(n).unwrap_or(i64::MAX / 60_000))
}

impl RetentionSettings {
    /// Checks every key, reporting every problem together.
    pub fn check(&self) -> Result<Checked, SettingsError> {
        let mut problems = Vec::new();
        let mut bad = |key: String, problem: String| problems.push((key, problem));
        // A year at most between runs; a run every few seconds would only load the mesh.
        if self.purge_interval_minutes > 525_600 {
            bad(
                "retention.purge_interval_minutes".into(),
                "0 (off) to 525600 (a year)".into(),
            );
        }
        if !(1..=525_600).contains(&self.retry_minutes) {
            bad("retention.retry_minutes".into(), "1 to 525600".into());
        }
        if !(10..=3_600_000).contains(&self.scheduler_tick_ms) {
            bad("retention.scheduler_tick_ms".into(), "10 to 3600000".into());
        }
        let services = match parse_services(&self.services) {
            Ok(services) => services,
            Err(problem) => {
                bad("retention.services".into(), problem);
                Vec::new()
            }
        };
        if !(100..=600_000).contains(&self.call_timeout_ms) {
            bad("retention.call_timeout_ms".into(), "100 to 600000".into());
        }
        // The lease must outlast a run: the calls run in parallel, each bounded.
        if self.lease_seconds.saturating_mul(1000) < self.call_timeout_ms.saturating_mul(2)
            || self.lease_seconds > 86_400
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
            interval: (self.purge_interval_minutes > 0)
                .then(|| minutes(self.purge_interval_minutes)),
            retry_after: minutes(self.retry_minutes),
            tick: Duration::from_millis(self.scheduler_tick_ms),
            services,
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            lease: chrono::Duration::seconds(i64::try_from(self.lease_seconds).unwrap_or(86_400)),
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
        let checked = RetentionSettings::default().check().expect("defaults");
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
            purge_interval_minutes: 0,
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
        let checked = settings.check().expect("valid");
        assert_eq!(checked.interval, None);
        let find = |key: &str| checked.policies.iter().find(|p| p.category == key);
        let hr = find("hr.application").expect("added");
        assert_eq!(hr.description, "6 months after the request is completed");
        assert_eq!(
            find("billing.record").map(|p| p.period),
            Some(Period::years(10))
        );

        let bad = RetentionSettings {
            services: "identity,identity".into(),
            lease_seconds: 1,
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
            .check()
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
