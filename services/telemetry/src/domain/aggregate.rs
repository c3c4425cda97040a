//! Aggregates are not personal data when no bucket is small enough to single someone out
//! ("You cannot be identified from aggregate information"): a bucket is shown only when at
//! least k distinct people are behind it; counting events would let one person's six
//! events make a bucket of their own.
//!
//! People are counted by pseudonym (the subject when logged in, the device pseudonym when
//! logged out) in an exact set of keyed hashes per bucket, kept only until k is reached:
//! exact up to k (a collision among at most k 256-bit keyed hashes, below 2^-230 likely
//! for k up to 1,000, counts two people as one, which only withholds more); a person counts once per pseudonym, so one seen logged
//! in and on logged-out devices counts once for each. Once k is reached the set is
//! dropped and the bucket stays published: an erasure cannot take it back below k, so
//! neither its count nor its being shown says anything about the erased person.

/// Default k-threshold.
pub const DEFAULT_K: u32 = 5;
/// Smallest k-threshold accepted: below it a bucket could describe a handful of people
/// (1 would turn suppression off).
pub const MIN_K: u32 = 5;
/// Largest k-threshold accepted (the per-bucket sets hold at most k hashes).
pub const MAX_K: u32 = 1000;

/// A bucket as stored: events counted, distinct people seen (capped at k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Events.
    pub events: u64,
    /// Distinct people, up to the k in force when it was counted.
    pub people: u64,
}

/// Whether a bucket with `people` distinct people behind it may be shown.
pub fn published(people: u64, k: u32) -> bool {
    people >= u64::from(k)
}

/// The people count to store after a recount of a bucket's set found `distinct`: capped at
/// `k`, since nothing is counted past it.
pub fn people_after_recount(distinct: u64, k: u32) -> u64 {
    distinct.min(u64::from(k))
}

/// Whether a bucket of `day` that is still short of k people is past the window in
/// which it may reach k (`window_days` after its day, in whole UTC days), and goes.
pub fn small_bucket_expired(
    day: chrono::NaiveDate,
    today: chrono::NaiveDate,
    window_days: u32,
) -> bool {
    (today - day).num_days() > i64::from(window_days)
}

/// The first day whose small buckets are kept: buckets of earlier days still short of k
/// are deleted (see [`small_bucket_expired`]).
pub fn small_bucket_cutoff(today: chrono::NaiveDate, window_days: u32) -> chrono::NaiveDate {
    today
        .checked_sub_days(chrono::Days::new(u64::from(window_days)))
        .unwrap_or(chrono::NaiveDate::MIN)
}

/// The first bucket day kept by a `telemetry.aggregate` cutoff, as stored (YYYY-MM-DD):
/// a bucket is deleted once its whole day is before the cutoff.
pub fn first_day_kept(cutoff: chrono::DateTime<chrono::Utc>) -> String {
    cutoff.date_naive().format("%Y-%m-%d").to_string()
}

/// Splits buckets into those shown (with their event counts) and the number withheld.
pub fn suppress<T>(buckets: Vec<(T, Bucket)>, k: u32) -> (Vec<(T, u64)>, u32) {
    let mut withheld = 0u32;
    let shown = buckets
        .into_iter()
        .filter_map(|(key, bucket)| {
            if published(bucket.people, k) {
                Some((key, bucket.events))
            } else {
                withheld += 1;
                None
            }
        })
        .collect();
    (shown, withheld)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn an_aggregate_goes_once_its_whole_day_is_before_the_cutoff() {
        // Policy: aggregates may be kept "beyond this time", not without limit.
        let cutoff = chrono::DateTime::parse_from_rfc3339("2036-05-03T10:00:00Z")
            .expect("time")
            .to_utc();
        let first = first_day_kept(cutoff);
        assert_eq!(first, "2036-05-03");
        assert!("2036-05-02" < first.as_str());
        assert!("2036-05-03" >= first.as_str());
    }

    fn b(events: u64, people: u64) -> Bucket {
        Bucket { events, people }
    }

    #[test]
    fn aggregate_information_cannot_identify_you_buckets_count_people_not_events() {
        let (shown, withheld) = suppress(
            vec![
                ("one person, many events", b(600, 1)),
                ("four", b(4, 4)),
                ("five", b(5, 5)),
                ("many", b(100, 5)),
            ],
            5,
        );
        assert_eq!(shown, vec![("five", 5), ("many", 100)]);
        assert_eq!(withheld, 2);
    }

    #[test]
    fn the_people_count_stops_at_k() {
        assert_eq!(people_after_recount(3, 5), 3);
        assert_eq!(people_after_recount(5, 5), 5);
        assert_eq!(people_after_recount(9, 5), 5);
        assert!(!published(4, 5) && published(5, 5));
    }

    #[test]
    fn small_buckets_go_after_their_window() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default();
        assert!(!small_bucket_expired(day(20), day(20), 7));
        assert!(!small_bucket_expired(day(20), day(27), 7));
        assert!(small_bucket_expired(day(20), day(28), 7));
        for d in 10..=28 {
            assert_eq!(
                small_bucket_expired(day(d), day(28), 7),
                day(d) < small_bucket_cutoff(day(28), 7),
                "the purge's cutoff agrees with the rule on day {d}"
            );
        }
    }
}
