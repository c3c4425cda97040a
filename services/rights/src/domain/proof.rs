//! The proof period of a request (issue 16: "Rights erases its own records for the subject
//! once the request's proof period ends"): the retention category [`CATEGORY`] says how
//! long after its close a request keeps its personal details; after that only what proves
//! the request was answered stays (kind, regime, dates, status, outcome), under a keyed
//! pseudonym of the subject.

use std::collections::BTreeSet;

use chrono::{DateTime, Months, Utc};

/// The retention category of rights requests.
pub const CATEGORY: &str = "rights.request";
/// The blind-index context of the subject pseudonym a forgotten request keeps: one
/// subject's requests share it, and without the key it names nobody.
pub const PSEUDONYM_CONTEXT: &str = "rights-request-subject";

/// A period as the retention service states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofPeriod {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
}

impl ProofPeriod {
    /// Requests closed before the returned time have passed their proof period at `now`;
    /// `None` for an empty period (nothing is forgotten: a zero rule is a mistake, not a
    /// wish to erase every answer at once) or one reaching before the calendar.
    pub fn cutoff(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.years == 0 && self.months == 0 && self.days == 0 {
            return None;
        }
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        now.checked_sub_months(Months::new(months))?
            .checked_sub_signed(chrono::Duration::days(i64::from(self.days)))
    }
}

/// Whether a request is due to forget its details: closed before `cutoff` and not
/// forgotten yet. Open requests never are, however old.
pub fn due(
    closed_at: Option<DateTime<Utc>>,
    forgotten_at: Option<DateTime<Utc>>,
    cutoff: DateTime<Utc>,
) -> bool {
    forgotten_at.is_none() && closed_at.is_some_and(|closed| closed < cutoff)
}

/// What legal holds keep from being forgotten (policy: data is kept "as long as is
/// necessary ... to comply with our legal obligations"): every record when a hold names no
/// subject, else the records of the subjects held; only holds on [`CATEGORY`] or on every
/// category count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// A hold on every subject: nothing is forgotten.
    pub everyone: bool,
    /// Subjects held.
    pub subjects: BTreeSet<String>,
}

impl Held {
    /// The holds in force among `(subject, category)` pairs (empty = all).
    pub fn from_holds<'a>(holds: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut held = Self::default();
        for (subject, category) in holds {
            if !(category.is_empty() || category == CATEGORY) {
                continue;
            }
            if subject.is_empty() {
                held.everyone = true;
            } else {
                held.subjects.insert(subject.to_owned());
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_cutoff_is_the_period_before_now() {
        let two_years = ProofPeriod {
            years: 2,
            months: 0,
            days: 0,
        };
        assert_eq!(two_years.cutoff(t(2030, 3, 1)), Some(t(2028, 3, 1)));
        let mixed = ProofPeriod {
            years: 1,
            months: 1,
            days: 1,
        };
        assert_eq!(mixed.cutoff(t(2030, 3, 2)), Some(t(2029, 2, 1)));
        let zero = ProofPeriod {
            years: 0,
            months: 0,
            days: 0,
        };
        assert_eq!(zero.cutoff(t(2030, 3, 1)), None);
    }

    #[test]
    fn only_requests_closed_before_the_cutoff_and_not_yet_forgotten_are_due() {
        let cutoff = t(2028, 3, 1);
        assert!(due(Some(t(2028, 2, 28)), None, cutoff));
        assert!(!due(Some(t(2028, 3, 2)), None, cutoff));
        assert!(
            !due(None, None, cutoff),
            "an open request keeps its details"
        );
        assert!(!due(Some(t(2020, 1, 1)), Some(t(2028, 1, 1)), cutoff));
    }

    #[test]
    fn only_holds_on_rights_requests_or_everything_keep_records() {
        let held = Held::from_holds([("s1", CATEGORY), ("s2", ""), ("s3", "billing.record")]);
        assert!(!held.everyone);
        assert_eq!(
            held.subjects.iter().map(String::as_str).collect::<Vec<_>>(),
            ["s1", "s2"]
        );
        assert!(Held::from_holds([("", CATEGORY)]).everyone);
        assert!(!Held::from_holds([("", "telemetry.events")]).everyone);
        assert_eq!(Held::from_holds([]), Held::default());
    }
}
