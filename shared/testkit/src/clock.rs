//! Where test time starts: one fixed instant, so dates in assertions do not depend on the
//! day a test runs, and a [`ManualClock`] stopped there for the services to read.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pdm_runtime::ManualClock;

/// Where a test's clock starts unless it needs another day: 2026-11-29 12:00:00 UTC (a
/// Sunday, mid-day, so neither a day nor a month boundary is near).
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A manual clock stopped at [`start_time`]; hand it to a mesh with
/// [`TestMesh::clock`](crate::TestMesh::clock) and move it with `advance`.
pub fn start_clock() -> Arc<ManualClock> {
    ManualClock::new(start_time())
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike, Weekday};
    use pdm_runtime::Clock;

    use super::*;

    #[test]
    fn the_start_is_a_fixed_sunday_noon() {
        let start = start_time();
        assert_eq!((start.year(), start.month(), start.day()), (2026, 11, 29));
        assert_eq!(start.weekday(), Weekday::Sun);
        assert_eq!(start.hour(), 12);
        assert_eq!(start_clock().now(), start);
    }
}
