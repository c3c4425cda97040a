//! Birth dates and the age rule (policy: "does not knowingly collect any personally
//! identifiable information from children under the age of 18").

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use pdm_proto::common::v1::Region;

use super::calendar;

/// The minimum age for an account.
pub const MINIMUM_AGE: u32 = 18;

/// Parses a `YYYY-MM-DD` birth date that is not in the future and not absurdly old.
pub fn parse_birth_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    let date =
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| "must be a date as YYYY-MM-DD")?;
    if raw.len() != 10 {
        return Err("must be a date as YYYY-MM-DD");
    }
    if date > today {
        return Err("must not be in the future");
    }
    if today.year() - date.year() > 150 {
        return Err("must be within the last 150 years");
    }
    Ok(date)
}

/// Completed years between `birth` and `today`. Someone born on 29 February turns a year
/// older on 1 March in common years.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> u32 {
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// Whether someone born on `birth` may hold an account on `today`.
pub fn is_adult(birth: NaiveDate, today: NaiveDate) -> bool {
    age_on(birth, today) >= MINIMUM_AGE
}

/// Whether someone born on `birth` and living in `region` may hold an account at
/// `instant`: birthdays count on the region's earliest local date (see
/// [`calendar::earliest_local_date`]), never on the UTC date.
pub fn is_adult_in(birth: NaiveDate, region: Region, instant: DateTime<Utc>) -> bool {
    is_adult(birth, calendar::earliest_local_date(region, instant))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn eighteen_starts_on_the_birthday() {
        let birth = d(2008, 11, 29);
        assert!(!is_adult(birth, d(2026, 11, 28)));
        assert!(is_adult(birth, d(2026, 11, 29)));
    }

    #[test]
    fn leap_day_birthdays_count_from_the_first_of_march_in_common_years() {
        let birth = d(2008, 2, 29);
        assert!(!is_adult(birth, d(2026, 2, 28)));
        assert!(is_adult(birth, d(2026, 3, 1)));
        assert_eq!(age_on(birth, d(2028, 2, 29)), 20);
    }

    #[test]
    fn birth_dates_must_be_real_past_dates() {
        let today = d(2026, 11, 29);
        assert!(parse_birth_date("1990-02-30", today).is_err());
        assert!(parse_birth_date("1990-2-3", today).is_err());
        assert!(parse_birth_date("2027-01-01", today).is_err());
        assert!(parse_birth_date("1850-01-01", today).is_err());
        assert_eq!(parse_birth_date("1990-02-03", today), Ok(d(1990, 2, 3)));
    }

    #[test]
    fn the_age_rule_counts_on_the_subjects_local_date_not_utc() {
        // Policy, "Our policy towards the Children": at 23:30 UTC on 28 November it is
        // already the 29th in Zurich but still the 28th in California.
        let birth = d(2008, 11, 29);
        let instant = DateTime::<Utc>::from_naive_utc_and_offset(
            d(2026, 11, 28).and_hms_opt(23, 30, 0).unwrap_or_default(),
            Utc,
        );
        assert!(is_adult_in(birth, Region::Ch, instant));
        assert!(!is_adult_in(birth, Region::Uk, instant));
        assert!(!is_adult_in(birth, Region::UsCa, instant));
    }

    proptest! {
        #[test]
        fn age_grows_by_one_each_birthday(y in 1900i32..2100, m in 1u32..=12, day in 1u32..=28, plus in 0i32..100) {
            let birth = d(y, m, day);
            let birthday = d(y + plus, m, day);
            prop_assert_eq!(age_on(birth, birthday), u32::try_from(plus).unwrap_or(0));
            if let Some(eve) = birthday.pred_opt()
                && plus > 0
            {
                prop_assert_eq!(age_on(birth, eve), u32::try_from(plus - 1).unwrap_or(0));
            }
        }
    }
}
