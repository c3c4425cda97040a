//! When a request was received. The deadline runs from receipt ("If you make a request,
//! we have one month to respond to you"), and a letter or an email to
//! privacy@digitalapicraft.com is received when it arrives, not when the privacy team
//! enters it: the team records the real time, and only the team may.

use chrono::{DateTime, Duration, Utc};

/// How far back a receipt time may go (a year: older post is a records matter).
pub const MAX_AGE_DAYS: i64 = 365;
/// Clock difference tolerated for a receipt time "now".
pub const SKEW_SECONDS: i64 = 300;

/// The time a request counts as received: `claimed` when the privacy team gives one,
/// else `now`; `Err` says why a claimed time is refused.
pub fn received(
    claimed: Option<DateTime<Utc>>,
    by_privacy_team: bool,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, &'static str> {
    let Some(at) = claimed else {
        return Ok(now);
    };
    if !by_privacy_team {
        return Err("only the privacy team records when a letter or an email arrived");
    }
    if at > now + Duration::seconds(SKEW_SECONDS) {
        return Err("not in the future");
    }
    if at < now - Duration::days(MAX_AGE_DAYS) {
        return Err("at most a year ago");
    }
    Ok(at.min(now))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .single()
            .expect("date")
    }

    #[test]
    fn a_letter_counts_from_the_day_it_arrived() {
        let arrived = now() - Duration::days(9);
        assert_eq!(received(Some(arrived), true, now()), Ok(arrived));
        assert_eq!(received(None, false, now()), Ok(now()));
        assert_eq!(received(None, true, now()), Ok(now()));
    }

    #[test]
    fn only_the_privacy_team_backdates_and_only_within_a_year() {
        let arrived = now() - Duration::days(9);
        assert!(received(Some(arrived), false, now()).is_err());
        assert!(received(Some(now() + Duration::hours(1)), true, now()).is_err());
        assert_eq!(
            received(Some(now() + Duration::seconds(60)), true, now()),
            Ok(now()),
            "a clock a minute ahead is now"
        );
        assert!(received(Some(now() - Duration::days(366)), true, now()).is_err());
        assert!(received(Some(now() - Duration::days(365)), true, now()).is_ok());
    }
}
