//! Legal deadlines.
//!
//! GDPR, UK GDPR and the Swiss FADP: one calendar month from receipt (Art. 12(3) GDPR;
//! "If you make a request, we have one month to respond to you"), computed as Regulation
//! 1182/71 says: the period ends at the end of the day with the same date one month later
//! or, when that month has no such date, at the end of its last day. Extendable by up to
//! two further months, with a reason, only before the first deadline passes.
//!
//! CCPA: receipt confirmed within 10 business days; answered within one calendar month of
//! receipt, as for the GDPR, because the policy promises it ("CCPA Privacy Rights": "If you
//! make a request, we have one month to respond to you"), though the statute would allow
//! 45 days; the clock runs while verification is pending. The privacy team may extend it
//! once, to at most 90 days after receipt (the statute's 45 + 45 days).
//!
//! Every extension is told to the subject with its reason and the new date
//! ([`extension_message`]); the policy text itself promises one month and says nothing of
//! extensions (noted in docs/services.md, Rights).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeDelta, Utc, Weekday};
use pdm_proto::rights::v1::Regime;

/// The end (last instant) of a day, UTC.
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - TimeDelta::microseconds(1)
}

/// `day` plus `months` calendar months, clamped to the last day of the target month
/// (31 January + 1 month = 28 or 29 February).
pub fn add_months(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_add_months(Months::new(months)).unwrap_or(day)
}

/// Whether a day is a business day (Monday to Friday; public holidays are not modelled).
pub fn is_business_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The day `n` business days after `day`.
pub fn add_business_days(day: NaiveDate, n: u32) -> NaiveDate {
    let mut current = day;
    let mut left = n;
    while left > 0 {
        current = current.succ_opt().unwrap_or(current);
        if is_business_day(current) {
            left -= 1;
        }
    }
    current
}

/// The deadline to answer a request received at `received`.
pub fn due(regime: Regime, received: DateTime<Utc>) -> DateTime<Utc> {
    // One month for every regime: the policy promises it under the GDPR and the CCPA alike.
    let _ = regime;
    end_of_day(add_months(received.date_naive(), 1))
}

/// The latest a CCPA answer may be extended to: 90 days after receipt.
pub fn ccpa_limit(received: DateTime<Utc>) -> DateTime<Utc> {
    let day = received.date_naive();
    end_of_day(day.checked_add_days(Days::new(90)).unwrap_or(day))
}

/// The message telling the subject of an extension: why, the new date and the old one.
pub fn extension_message(
    request_id: &str,
    reason: &str,
    before: DateTime<Utc>,
    after: DateTime<Utc>,
) -> String {
    format!(
        "We need more time to answer your request {request_id}.\nThe reason: {reason}\n\
         The new deadline is {} (it was {}).\n",
        after.format("%Y-%m-%d"),
        before.format("%Y-%m-%d"),
    )
}

/// CCPA: when receipt must be confirmed by.
pub fn confirm_by(regime: Regime, received: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (regime == Regime::Ccpa).then(|| end_of_day(add_business_days(received.date_naive(), 10)))
}

/// Why an extension is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionRefused {
    /// The first deadline has passed.
    DeadlinePassed,
    /// The extensions would exceed what the law allows.
    TooLong,
    /// CCPA allows one extension.
    AlreadyExtended,
    /// Months must be 1 or 2.
    BadMonths,
}

impl std::fmt::Display for ExtensionRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DeadlinePassed => {
                "the first deadline has passed: extensions must be made before it"
            }
            Self::TooLong => "at most two further months in all",
            Self::AlreadyExtended => "a CCPA deadline can be extended once",
            Self::BadMonths => "months must be 1 or 2",
        })
    }
}

/// The extended deadline. `original` is the first deadline, `current` the deadline in
/// force (equal when never extended).
pub fn extend(
    regime: Regime,
    received: DateTime<Utc>,
    original: DateTime<Utc>,
    current: DateTime<Utc>,
    months: i32,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ExtensionRefused> {
    if now > original {
        return Err(ExtensionRefused::DeadlinePassed);
    }
    let day = received.date_naive();
    if regime == Regime::Ccpa {
        if current != original {
            return Err(ExtensionRefused::AlreadyExtended);
        }
        return Ok(ccpa_limit(received));
    }
    let months = u32::try_from(months).map_err(|_| ExtensionRefused::BadMonths)?;
    if !(1..=2).contains(&months) {
        return Err(ExtensionRefused::BadMonths);
    }
    let extended = end_of_day(add_months(current.date_naive(), months));
    if extended > end_of_day(add_months(day, 3)) {
        return Err(ExtensionRefused::TooLong);
    }
    Ok(extended)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 30, 0)
            .single()
            .unwrap_or_default()
    }

    fn day(t: DateTime<Utc>) -> NaiveDate {
        t.date_naive()
    }

    #[test]
    fn one_month_ends_on_the_same_date_or_the_last_day_of_a_shorter_month() {
        assert_eq!(
            day(due(Regime::Gdpr, at(2026, 3, 15))),
            NaiveDate::from_ymd_opt(2026, 4, 15).unwrap_or_default()
        );
        assert_eq!(
            day(due(Regime::Gdpr, at(2026, 1, 31))),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default()
        );
        assert_eq!(
            day(due(Regime::UkGdpr, at(2028, 1, 31))),
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap_or_default(),
            "leap year"
        );
        assert_eq!(
            day(due(Regime::Swiss, at(2026, 8, 31))),
            NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default()
        );
        assert_eq!(
            day(due(Regime::Gdpr, at(2026, 12, 31))),
            NaiveDate::from_ymd_opt(2027, 1, 31).unwrap_or_default()
        );
        let d = due(Regime::Gdpr, at(2026, 3, 15));
        assert_eq!(
            d,
            end_of_day(NaiveDate::from_ymd_opt(2026, 4, 15).unwrap_or_default()),
            "ends at the end of the day"
        );
    }

    #[test]
    fn ccpa_if_you_make_a_request_we_have_one_month_to_respond_and_confirm_in_10_business_days() {
        // "CCPA Privacy Rights": "If you make a request, we have one month to respond to you".
        let received = at(2026, 11, 27); // a Friday
        assert_eq!(
            day(due(Regime::Ccpa, received)),
            NaiveDate::from_ymd_opt(2026, 12, 27).unwrap_or_default()
        );
        assert_eq!(
            day(due(Regime::Ccpa, at(2026, 1, 31))),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default(),
            "the same calendar rule as the GDPR"
        );
        assert_eq!(
            confirm_by(Regime::Ccpa, received).map(day),
            NaiveDate::from_ymd_opt(2026, 12, 11)
        );
        assert_eq!(confirm_by(Regime::Gdpr, received), None);
    }

    #[test]
    fn gdpr_extensions_are_bounded_and_only_before_the_deadline() {
        let received = at(2026, 1, 31);
        let original = due(Regime::Gdpr, received);
        let two = extend(Regime::Gdpr, received, original, original, 2, received);
        assert_eq!(
            two.map(day),
            Ok(NaiveDate::from_ymd_opt(2026, 4, 28).unwrap_or_default())
        );
        let one =
            extend(Regime::Gdpr, received, original, original, 1, received).unwrap_or(original);
        assert!(
            extend(Regime::Gdpr, received, original, one, 1, received).is_ok(),
            "a second month is fine"
        );
        let three = extend(Regime::Gdpr, received, original, one, 2, received);
        assert_eq!(three, Err(ExtensionRefused::TooLong));
        assert_eq!(
            extend(Regime::Gdpr, received, original, original, 3, received),
            Err(ExtensionRefused::BadMonths)
        );
        let late = original + TimeDelta::seconds(1);
        assert_eq!(
            extend(Regime::Gdpr, received, original, original, 1, late),
            Err(ExtensionRefused::DeadlinePassed)
        );
    }

    #[test]
    fn an_extension_message_names_the_reason_and_the_new_date() {
        let text = extension_message("r-1", "many records", at(2026, 3, 15), at(2026, 5, 15));
        assert!(text.contains("r-1") && text.contains("The reason: many records"));
        assert!(text.contains("The new deadline is 2026-05-15 (it was 2026-03-15)"));
    }

    #[test]
    fn ccpa_extends_once_to_90_days_after_receipt() {
        let received = at(2026, 11, 27);
        let original = due(Regime::Ccpa, received);
        let extended = extend(Regime::Ccpa, received, original, original, 0, received);
        assert_eq!(
            extended.clone().map(day),
            Ok(NaiveDate::from_ymd_opt(2027, 2, 25).unwrap_or_default())
        );
        let again = extend(
            Regime::Ccpa,
            received,
            original,
            extended.unwrap_or(original),
            0,
            received,
        );
        assert_eq!(again, Err(ExtensionRefused::AlreadyExtended));
    }

    proptest! {
        #[test]
        fn a_month_later_is_never_earlier_than_28_days_nor_later_than_31(days in 0i64..40_000) {
            let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default() + TimeDelta::days(days);
            let end = add_months(start, 1);
            let gap = (end - start).num_days();
            prop_assert!((28..=31).contains(&gap), "{} -> {}", start, end);
            // Same date, or the last day of a shorter month.
            prop_assert!(end.day() == start.day() || end.succ_opt().map(|d| d.day()) == Some(1));
        }

        #[test]
        fn business_days_skip_weekends(days in 0i64..5000, n in 1u32..30) {
            let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default() + TimeDelta::days(days);
            let end = add_business_days(start, n);
            prop_assert!(is_business_day(end));
            let counted = start.iter_days().skip(1).take_while(|d| *d <= end).filter(|d| is_business_day(*d)).count();
            prop_assert_eq!(counted, n as usize);
        }
    }
}
