//! Children's data ("Our policy towards the Children": "DigitalAPICraft does not knowingly
//! collect any personally identifiable information from children under the age of 18. If
//! you think that your child provided this kind of personal data on our website, we
//! strongly encourage you to contact us immediately and we will do our best efforts to
//! promptly remove such information from our records").
//!
//! "Promptly" gets a deadline of its own: 72 hours from the privacy team's confirmation of
//! a report, never later than the regime's deadline counted from the report itself. Such
//! an erasure goes ahead of every other queued task.

use chrono::{DateTime, TimeDelta, Utc};
use pdm_proto::rights::v1::Regime;

use super::deadline;

/// "Promptly": hours from confirmation to the end of the erasure.
pub const PROMPT_HOURS: i64 = 72;

/// Task priority of a confirmed child report's erasure: above a request flagged
/// `concerns_child` (1) and ordinary work (0).
pub const REPORT_PRIORITY: i32 = 2;

/// Longest email address (RFC 5321 path).
pub const MAX_EMAIL: usize = 254;

/// When the erasure of a report received at `reported` and confirmed at `confirmed` is due.
pub fn erasure_due(
    regime: Regime,
    reported: DateTime<Utc>,
    confirmed: DateTime<Utc>,
) -> DateTime<Utc> {
    let prompt = confirmed + TimeDelta::hours(PROMPT_HOURS);
    prompt.min(deadline::due(regime, reported))
}

/// A plausible email address, trimmed and lower-cased: one `@`, a local part, a domain with
/// a dot, no spaces or control characters, at most [`MAX_EMAIL`] characters.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let value = raw.trim().to_lowercase();
    if value.is_empty() {
        return Err("required");
    }
    if value.chars().count() > MAX_EMAIL {
        return Err("at most 254 characters");
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err("not an email address");
    };
    let well_formed = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err("not an email address");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn we_will_do_our_best_efforts_to_promptly_remove_such_information_within_72_hours() {
        let reported = at(2026, 3, 1, 9);
        let confirmed = at(2026, 3, 2, 15);
        assert_eq!(
            erasure_due(Regime::Gdpr, reported, confirmed),
            at(2026, 3, 5, 15)
        );
    }

    #[test]
    fn promptly_is_never_later_than_the_regimes_own_deadline() {
        let reported = at(2026, 3, 1, 9);
        let late = at(2026, 3, 31, 9);
        assert_eq!(
            erasure_due(Regime::UkGdpr, reported, late),
            deadline::due(Regime::UkGdpr, reported)
        );
    }

    #[test]
    fn emails_are_plausible_and_normalised() {
        assert_eq!(
            email(" Parent@Example.ORG "),
            Ok("parent@example.org".into())
        );
        for bad in [
            "",
            "parent",
            "@example.org",
            "parent@example",
            "a b@example.org",
            "a@b@c.org",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert!(email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
