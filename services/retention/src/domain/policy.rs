//! A retention policy: how long one data category is kept, counted from which event, and
//! on what legal basis; and the purge rule it gives at a point in time.

use chrono::{DateTime, Utc};
use pdm_proto::{common::v1::LegalBasis, subject::v1::RetentionTrigger};

use super::period::Period;

/// The rule of one data category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Category key, e.g. `billing.record`.
    pub category: String,
    /// How long, counted from the trigger.
    pub period: Period,
    /// What the period counts from.
    pub trigger: RetentionTrigger,
    /// Why the data may be kept that long.
    pub legal_basis: LegalBasis,
    /// The rule in words (shown to subjects).
    pub description: String,
}

impl Policy {
    /// The purge rule at `as_of`: records whose trigger happened before the cutoff have
    /// expired. `None` for data kept without limit (or a trigger not known), or when the
    /// cutoff falls before the calendar begins (nothing can have expired).
    pub fn cutoff(&self, as_of: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if matches!(
            self.trigger,
            RetentionTrigger::Never | RetentionTrigger::Unspecified
        ) {
            return None;
        }
        self.period.sub_from(as_of)
    }

    /// When a subject's data of this category is due for deletion, given when the
    /// subject's trigger happened. Only triggers that happen once per subject give a date:
    /// records counted from their own time each have their own.
    pub fn delete_after(&self, triggered_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !per_subject(self.trigger) {
            return None;
        }
        self.period.add_to(triggered_at)
    }
}

/// Triggers recorded per subject (RecordTrigger), as opposed to a record's own time or
/// no limit at all.
pub fn per_subject(trigger: RetentionTrigger) -> bool {
    matches!(
        trigger,
        RetentionTrigger::AccountClosed
            | RetentionTrigger::ConsentWithdrawn
            | RetentionTrigger::RequestCompleted
    )
}

/// The rule in words, for policies given without a description.
pub fn describe(period: Period, trigger: RetentionTrigger) -> String {
    let after = |event: &str| {
        if period.is_zero() {
            format!("until {event}")
        } else {
            format!("{period} after {event}")
        }
    };
    match trigger {
        RetentionTrigger::AccountClosed => after("the account is closed"),
        RetentionTrigger::ConsentWithdrawn => after("consent is withdrawn"),
        RetentionTrigger::RequestCompleted => after("the request is completed"),
        RetentionTrigger::EventTime => {
            if period.is_zero() {
                "not kept".to_owned()
            } else {
                format!("{period} from when each record was made")
            }
        }
        RetentionTrigger::Never | RetentionTrigger::Unspecified => "kept without limit".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn policy(period: Period, trigger: RetentionTrigger) -> Policy {
        Policy {
            category: "billing.record".into(),
            period,
            trigger,
            legal_basis: LegalBasis::LegalObligation,
            description: String::new(),
        }
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn cutoffs_count_back_from_now_and_never_means_no_rule() {
        let now = at(2035, 1, 1);
        let billing = policy(Period::years(8), RetentionTrigger::AccountClosed);
        assert_eq!(billing.cutoff(now), Some(at(2027, 1, 1)));
        let events = policy(Period::months(13), RetentionTrigger::EventTime);
        assert_eq!(events.cutoff(now), Some(at(2033, 12, 1)));
        let aggregates = policy(Period::default(), RetentionTrigger::Never);
        assert_eq!(aggregates.cutoff(now), None);
        let profile = policy(Period::default(), RetentionTrigger::AccountClosed);
        assert_eq!(profile.cutoff(now), Some(now), "period 0: gone at closure");
    }

    #[test]
    fn only_per_subject_triggers_give_a_deletion_date() {
        let closed = at(2026, 11, 29);
        let billing = policy(Period::years(8), RetentionTrigger::AccountClosed);
        assert_eq!(billing.delete_after(closed), Some(at(2034, 11, 29)));
        let sessions = policy(Period::days(30), RetentionTrigger::EventTime);
        assert_eq!(sessions.delete_after(closed), None);
        let aggregates = policy(Period::default(), RetentionTrigger::Never);
        assert_eq!(aggregates.delete_after(closed), None);
    }

    #[test]
    fn rules_read_as_words() {
        assert_eq!(
            describe(Period::years(8), RetentionTrigger::AccountClosed),
            "8 years after the account is closed"
        );
        assert_eq!(
            describe(Period::default(), RetentionTrigger::ConsentWithdrawn),
            "until consent is withdrawn"
        );
        assert_eq!(
            describe(Period::months(13), RetentionTrigger::EventTime),
            "13 months from when each record was made"
        );
        assert_eq!(
            describe(Period::default(), RetentionTrigger::Never),
            "kept without limit"
        );
    }
}
