//! The subject's local calendar date, by region: birthdays begin at local midnight, not at
//! midnight UTC.
//!
//! A region can span several time zones, and the account holds only the region. We take
//! the strictest one: the zone whose date is the earliest at that instant (the westernmost
//! inhabited zone of the region), so nobody is treated as 18 before they are 18 anywhere in
//! their region. A subject in the east of a region may wait a few hours longer than their
//! own clock says; never the other way round.
//!
//! | region | zone taken | offset |
//! |---|---|---|
//! | EEA | America/Guadeloupe (Guadeloupe, Martinique, Saint-Martin: outermost regions of the EU) | UTC-4, no summer time |
//! | UK | Europe/London | UTC+0, UTC+1 in European summer time |
//! | Switzerland | Europe/Zurich | UTC+1, UTC+2 in European summer time |
//! | California | America/Los_Angeles | UTC-8, UTC-7 in US daylight saving time |
//! | US outside California | Pacific/Pago_Pago (American Samoa, the westernmost inhabited US zone) | UTC-11, no summer time |
//! | India | Asia/Kolkata | UTC+5:30 |
//! | anywhere else, or unknown | "anywhere on Earth" | UTC-12 |
//!
//! Summer-time rules are the ones in force since 2007 (US) and 1996 (EU, UK, Switzerland);
//! only today's date is ever asked for, so past rules are not needed.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};
use pdm_proto::common::v1::Region;

/// The latest offset anywhere (Kiribati, UTC+14): a date that has begun somewhere on
/// Earth is not in the future.
const LATEST_OFFSET_MINUTES: i64 = 14 * 60;

/// How a zone moves its clocks in summer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SummerTime {
    /// Never.
    None,
    /// One hour ahead from the last Sunday of March to the last Sunday of October, 01:00
    /// UTC both times (EU, UK, Switzerland).
    European,
    /// One hour ahead from the second Sunday of March, 02:00 local standard time, to the
    /// first Sunday of November, 02:00 local daylight time.
    UnitedStates,
}

/// A time zone as this module needs it.
#[derive(Debug, Clone, Copy)]
struct Zone {
    /// Standard (winter) offset from UTC, in minutes.
    standard_minutes: i64,
    summer: SummerTime,
}

/// The zone whose date is the earliest in the region (see the table above).
fn earliest_zone(region: Region) -> Zone {
    let zone = |hours: i64, minutes: i64, summer| Zone {
        standard_minutes: hours * 60 + minutes,
        summer,
    };
    match region {
        Region::Eea => zone(-4, 0, SummerTime::None),
        Region::Uk => zone(0, 0, SummerTime::European),
        Region::Ch => zone(1, 0, SummerTime::European),
        Region::UsCa => zone(-8, 0, SummerTime::UnitedStates),
        Region::Us => zone(-11, 0, SummerTime::None),
        Region::In => zone(5, 30, SummerTime::None),
        Region::Other | Region::Unspecified => zone(-12, 0, SummerTime::None),
    }
}

/// The `n`th (1-based) `weekday` of a month.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, u8::try_from(n).ok()?)
}

/// The last Sunday of a month.
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }?;
    let last = next_month.pred_opt()?;
    let back = i64::from(last.weekday().num_days_from_sunday());
    last.checked_sub_signed(Duration::days(back))
}

fn at(date: Option<NaiveDate>, hour: u32) -> Option<NaiveDateTime> {
    date?.and_hms_opt(hour, 0, 0)
}

/// Whether summer time is in force at `utc` (a UTC wall-clock time) in a zone.
fn in_summer(zone: Zone, utc: NaiveDateTime) -> bool {
    let year = utc.year();
    let (start, end) = match zone.summer {
        SummerTime::None => return false,
        SummerTime::European => (at(last_sunday(year, 3), 1), at(last_sunday(year, 10), 1)),
        SummerTime::UnitedStates => {
            let standard = Duration::minutes(zone.standard_minutes);
            // 02:00 standard time begins it; 02:00 daylight time (01:00 standard) ends it.
            (
                at(nth_weekday(year, 3, Weekday::Sun, 2), 2).map(|t| t - standard),
                at(nth_weekday(year, 11, Weekday::Sun, 1), 1).map(|t| t - standard),
            )
        }
    };
    matches!((start, end), (Some(start), Some(end)) if start <= utc && utc < end)
}

/// The date on a zone's clocks at an instant.
fn local_date(zone: Zone, instant: DateTime<Utc>) -> NaiveDate {
    let utc = instant.naive_utc();
    let summer = if in_summer(zone, utc) { 60 } else { 0 };
    (utc + Duration::minutes(zone.standard_minutes + summer)).date()
}

/// The earliest date on any clock of the subject's region at `instant`: the date the age
/// rule counts birthdays on.
pub fn earliest_local_date(region: Region, instant: DateTime<Utc>) -> NaiveDate {
    local_date(earliest_zone(region), instant)
}

/// The latest date on any clock on Earth at `instant`: a birth date after it is in the
/// future everywhere.
pub fn latest_date_on_earth(instant: DateTime<Utc>) -> NaiveDate {
    (instant.naive_utc() + Duration::minutes(LATEST_OFFSET_MINUTES)).date()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::age::is_adult;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s)
            .single()
            .unwrap_or_default()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    /// The first second at which someone born on `birth` is 18 in `region`, checked to be
    /// a boundary: not adult one second before, adult at it.
    fn assert_turns_18_at(region: Region, birth: NaiveDate, first: DateTime<Utc>) {
        let before = first - Duration::seconds(1);
        assert!(
            !is_adult(birth, earliest_local_date(region, before)),
            "{region:?}: adult already at {before}"
        );
        assert!(
            is_adult(birth, earliest_local_date(region, first)),
            "{region:?}: not adult at {first}"
        );
    }

    #[test]
    fn children_become_18_at_local_midnight_in_winter() {
        // Policy, "Our policy towards the Children": under 18 means under 18 where the
        // subject lives, not in UTC. 29 November 2026: no summer time anywhere.
        let birth = d(2008, 11, 29);
        assert_turns_18_at(Region::Uk, birth, utc(2026, 11, 29, 0, 0, 0));
        assert_turns_18_at(Region::Ch, birth, utc(2026, 11, 28, 23, 0, 0));
        assert_turns_18_at(Region::In, birth, utc(2026, 11, 28, 18, 30, 0));
        assert_turns_18_at(Region::UsCa, birth, utc(2026, 11, 29, 8, 0, 0));
    }

    #[test]
    fn children_become_18_at_local_midnight_in_summer_time() {
        let birth = d(2008, 7, 15);
        assert_turns_18_at(Region::Uk, birth, utc(2026, 7, 14, 23, 0, 0));
        assert_turns_18_at(Region::Ch, birth, utc(2026, 7, 14, 22, 0, 0));
        assert_turns_18_at(Region::UsCa, birth, utc(2026, 7, 15, 7, 0, 0));
    }

    #[test]
    fn regions_of_many_zones_count_on_their_westernmost_clock() {
        // Nobody is 18 in the region before they are 18 on its last clock to reach the day.
        let birth = d(2008, 11, 29);
        // Paris is past midnight at 23:00 UTC, Guadeloupe only at 04:00 UTC.
        assert!(!is_adult(
            birth,
            earliest_local_date(Region::Eea, utc(2026, 11, 29, 3, 0, 0))
        ));
        assert_turns_18_at(Region::Eea, birth, utc(2026, 11, 29, 4, 0, 0));
        // New York and Honolulu are there long before American Samoa.
        assert_turns_18_at(Region::Us, birth, utc(2026, 11, 29, 11, 0, 0));
        // Anywhere else, or a region we do not know: the last date on Earth (UTC-12).
        assert_turns_18_at(Region::Other, birth, utc(2026, 11, 29, 12, 0, 0));
        assert_turns_18_at(Region::Unspecified, birth, utc(2026, 11, 29, 12, 0, 0));
    }

    #[test]
    fn summer_time_starts_and_ends_on_the_legal_sundays() {
        let uk = earliest_zone(Region::Uk);
        // 2026: last Sundays of March and October are the 29th and the 25th.
        assert!(!in_summer(uk, utc(2026, 3, 29, 0, 59, 59).naive_utc()));
        assert!(in_summer(uk, utc(2026, 3, 29, 1, 0, 0).naive_utc()));
        assert!(in_summer(uk, utc(2026, 10, 25, 0, 59, 59).naive_utc()));
        assert!(!in_summer(uk, utc(2026, 10, 25, 1, 0, 0).naive_utc()));
        let california = earliest_zone(Region::UsCa);
        // 2026: 8 March 02:00 PST (10:00 UTC) to 1 November 02:00 PDT (09:00 UTC).
        assert!(!in_summer(
            california,
            utc(2026, 3, 8, 9, 59, 59).naive_utc()
        ));
        assert!(in_summer(california, utc(2026, 3, 8, 10, 0, 0).naive_utc()));
        assert!(in_summer(
            california,
            utc(2026, 11, 1, 8, 59, 59).naive_utc()
        ));
        assert!(!in_summer(
            california,
            utc(2026, 11, 1, 9, 0, 0).naive_utc()
        ));
    }

    #[test]
    fn a_birth_date_is_in_the_future_only_once_it_has_begun_nowhere() {
        // 10:00 UTC on 28 November: already the 29th in Kiribati (UTC+14).
        assert_eq!(
            latest_date_on_earth(utc(2026, 11, 28, 10, 0, 0)),
            d(2026, 11, 29)
        );
        assert_eq!(
            latest_date_on_earth(utc(2026, 11, 28, 9, 59, 59)),
            d(2026, 11, 28)
        );
    }

    fn any_region() -> impl Strategy<Value = Region> {
        prop::sample::select(vec![
            Region::Eea,
            Region::Uk,
            Region::Ch,
            Region::UsCa,
            Region::Us,
            Region::In,
            Region::Other,
        ])
    }

    proptest! {
        #[test]
        fn local_dates_stay_within_the_day_on_earth(region in any_region(), secs in 0i64..4_102_444_800) {
            let instant = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            let local = earliest_local_date(region, instant);
            // Never later than the latest date on Earth, never earlier than the earliest.
            prop_assert!(local <= latest_date_on_earth(instant));
            prop_assert!(local >= earliest_local_date(Region::Other, instant));
            // And within a day of UTC's.
            let utc_date = instant.date_naive();
            prop_assert!((local - utc_date).num_days().abs() <= 1);
        }
    }
}
