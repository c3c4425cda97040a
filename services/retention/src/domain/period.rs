//! Retention periods in calendar units, and the two dates they give: the cutoff of a
//! purge (`now − period`) and the deletion date of a record (`trigger + period`).
//!
//! Months are calendar months (a month after 31 January is the last day of February), so
//! the two directions are not exact inverses. They are built so that a record is never
//! purged before the date its schedule announces: `t < cutoff(now)` implies
//! `delete_after(t) <= now` (see the property tests).

use std::fmt;

use chrono::{DateTime, Duration, Months, TimeZone, Utc};

/// The longest period a policy may have.
pub const MAX_YEARS: u32 = 100;

/// A length of time in calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
}

impl Period {
    /// A period of whole years.
    pub const fn years(years: u32) -> Self {
        Self {
            years,
            months: 0,
            days: 0,
        }
    }

    /// A period of whole months.
    pub const fn months(months: u32) -> Self {
        Self {
            years: 0,
            months,
            days: 0,
        }
    }

    /// A period of days.
    pub const fn days(days: u32) -> Self {
        Self {
            years: 0,
            months: 0,
            days,
        }
    }

    /// Checks raw values: none negative, at most [`MAX_YEARS`] in all.
    pub fn parse(years: i32, months: i32, days: i32) -> Result<Self, &'static str> {
        const PROBLEM: &str =
            "years, months and days must not be negative and the period at most 100 years";
        let (Ok(years), Ok(months), Ok(days)) = (
            u32::try_from(years),
            u32::try_from(months),
            u32::try_from(days),
        ) else {
            return Err(PROBLEM);
        };
        let period = Self {
            years,
            months,
            days,
        };
        if period.within_limit() {
            Ok(period)
        } else {
            Err(PROBLEM)
        }
    }

    /// Whether the period is at most [`MAX_YEARS`] long (measured from 1 January 2000).
    fn within_limit(&self) -> bool {
        if self.years > MAX_YEARS || self.months > MAX_YEARS * 12 || self.days > MAX_YEARS * 366 {
            return false;
        }
        let Some(reference) = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single() else {
            return false;
        };
        match (
            self.add_to(reference),
            reference.checked_add_months(Months::new(MAX_YEARS * 12)),
        ) {
            (Some(end), Some(limit)) => end <= limit,
            _ => false,
        }
    }

    /// Whether it is zero (the data goes as soon as the trigger happens).
    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0
    }

    fn total_months(&self) -> u32 {
        self.years.saturating_mul(12).saturating_add(self.months)
    }

    /// `time + period`: months first, then days. `None` beyond the calendar.
    pub fn add_to(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        time.checked_add_months(Months::new(self.total_months()))?
            .checked_add_signed(Duration::days(i64::from(self.days)))
    }

    /// `time − period`: days first, then months (the mirror of [`Period::add_to`]).
    pub fn sub_from(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        time.checked_sub_signed(Duration::days(i64::from(self.days)))?
            .checked_sub_months(Months::new(self.total_months()))
    }
}

impl fmt::Display for Period {
    /// "8 years", "13 months", "30 days", "1 year, 2 months and 3 days", "no time".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = |n: u32, one: &str, many: &str| match n {
            0 => None,
            1 => Some(format!("1 {one}")),
            n => Some(format!("{n} {many}")),
        };
        let parts: Vec<String> = [
            unit(self.years, "year", "years"),
            unit(self.months, "month", "months"),
            unit(self.days, "day", "days"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match parts.as_slice() {
            [] => f.write_str("no time"),
            [one] => f.write_str(one),
            [init @ .., last] => write!(f, "{} and {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn eight_years_after_closure_is_the_same_day_eight_years_on() {
        let closed = at(2026, 11, 29);
        assert_eq!(Period::years(8).add_to(closed), Some(at(2034, 11, 29)));
        assert_eq!(Period::years(8).sub_from(at(2034, 11, 29)), Some(closed));
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        assert_eq!(
            Period::months(1).add_to(at(2027, 1, 31)),
            Some(at(2027, 2, 28))
        );
        assert_eq!(
            Period::months(1).sub_from(at(2027, 3, 31)),
            Some(at(2027, 2, 28))
        );
        assert_eq!(
            Period::years(1).add_to(at(2028, 2, 29)),
            Some(at(2029, 2, 28))
        );
    }

    #[test]
    fn periods_are_checked() {
        assert_eq!(Period::parse(8, 0, 0), Ok(Period::years(8)));
        assert_eq!(Period::parse(0, 0, 0), Ok(Period::default()));
        assert_eq!(Period::parse(100, 0, 0), Ok(Period::years(100)));
        assert_eq!(Period::parse(0, 1200, 0), Ok(Period::months(1200)));
        assert!(Period::parse(-1, 0, 0).is_err());
        assert!(Period::parse(0, 0, -30).is_err());
        assert!(Period::parse(101, 0, 0).is_err());
        assert!(Period::parse(100, 0, 1).is_err());
        assert!(Period::parse(99, 12, 1).is_err());
        assert!(Period::parse(0, 0, 40_000).is_err());
        assert!(Period::parse(i32::MAX, i32::MAX, i32::MAX).is_err());
    }

    #[test]
    fn periods_read_as_words() {
        assert_eq!(Period::years(8).to_string(), "8 years");
        assert_eq!(Period::months(1).to_string(), "1 month");
        assert_eq!(Period::days(30).to_string(), "30 days");
        assert_eq!(Period::default().to_string(), "no time");
        let mixed = Period {
            years: 1,
            months: 2,
            days: 3,
        };
        assert_eq!(mixed.to_string(), "1 year, 2 months and 3 days");
    }

    fn period() -> impl Strategy<Value = Period> {
        (0u32..=20, 0u32..=30, 0u32..=400).prop_map(|(years, months, days)| Period {
            years,
            months,
            days,
        })
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // 2000-01-01 .. 2060-01-01, to the second.
        (946_684_800i64..2_840_140_800)
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default())
    }

    proptest! {
        #[test]
        fn nothing_is_purged_before_its_announced_date(p in period(), t in time(), now in time()) {
            let cutoff = p.sub_from(now).expect("in range");
            let delete_after = p.add_to(t).expect("in range");
            if t < cutoff {
                prop_assert!(delete_after <= now, "{t} purged at {now} before {delete_after}");
            }
        }

        #[test]
        fn everything_is_purged_within_days_of_its_announced_date(p in period(), t in time()) {
            let delete_after = p.add_to(t).expect("in range");
            // Month-end clamping can move the two directions apart by at most three days.
            let later = delete_after + Duration::days(4);
            prop_assert!(t < p.sub_from(later).expect("in range"));
        }

        #[test]
        fn a_longer_period_never_gives_a_later_cutoff(p in period(), extra in 0u32..400, now in time()) {
            let longer = Period { days: p.days + extra, ..p };
            prop_assert!(longer.sub_from(now) <= p.sub_from(now));
            prop_assert!(p.sub_from(now).expect("in range") <= now);
        }
    }
}
