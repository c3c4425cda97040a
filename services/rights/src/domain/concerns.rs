//! Complaints and reports of compromised data ("if you have any kind of privacy-related
//! complaint about our practices"; "If you believe your Personal Data has been
//! compromised, please contact us"): when the privacy team owes an answer.

use chrono::{DateTime, Duration, Utc};
use pdm_proto::rights::v1::{ConcernKind, Regime};

use super::deadline;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 4000;
/// Longest answer, in characters.
pub const MAX_OUTCOME: usize = 1000;
/// Hours to assess a report of compromised data: the time the law gives to notify a
/// breach (Art. 33 GDPR), so a real breach found from a report can still be notified.
pub const COMPROMISE_HOURS: i64 = 72;

/// When a concern of `kind` received at `received` must be answered: a complaint within
/// the month the policy gives every request, a possible compromise within 72 hours.
pub fn due(kind: ConcernKind, received: DateTime<Utc>) -> DateTime<Utc> {
    match kind {
        ConcernKind::DataCompromised => received + Duration::hours(COMPROMISE_HOURS),
        _ => deadline::due(Regime::Gdpr, received),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0)
            .single()
            .expect("date")
    }

    #[test]
    fn a_possible_compromise_is_assessed_within_72_hours() {
        assert_eq!(due(ConcernKind::DataCompromised, at(3, 9)), at(6, 9));
    }

    #[test]
    fn a_privacy_complaint_is_answered_within_a_month() {
        let due = due(ConcernKind::Complaint, at(3, 9));
        assert_eq!(due.date_naive().to_string(), "2027-01-03");
    }
}
