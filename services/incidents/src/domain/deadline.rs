//! The authority clocks. A deadline is an instant: the time of awareness plus the regime's
//! hours, counted in elapsed time (UTC). Neither a daylight-saving change nor the end of a
//! month moves it; how a local clock displays it is irrelevant to when it falls.

use chrono::{DateTime, Duration, Utc};

use super::incident::Risk;

/// Where a regime's deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineState {
    /// Not notified, not due yet.
    Pending,
    /// Initial notification sent by the deadline.
    Met,
    /// Initial notification sent after the deadline.
    Late,
    /// Not notified and past the deadline.
    Overdue,
    /// Assessed as unlikely to result in a risk: nothing is due.
    NotRequired,
}

/// The authority deadline: `aware_at` plus `hours` of elapsed time.
pub fn due(aware_at: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    aware_at + Duration::hours(i64::from(hours))
}

/// Where a deadline `due_at` stands at `now`, given the risk and when the regime's initial
/// notification was sent (if it was). A notification sent at the deadline itself is in time.
pub fn state(
    due_at: DateTime<Utc>,
    risk: Risk,
    initial_sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DeadlineState {
    match initial_sent_at {
        Some(sent) if sent <= due_at => DeadlineState::Met,
        Some(_) => DeadlineState::Late,
        None if !risk.authority_notified() => DeadlineState::NotRequired,
        None if now > due_at => DeadlineState::Overdue,
        None => DeadlineState::Pending,
    }
}

/// Whether an initial notification sent at `sent_at` is late (and so needs the reasons
/// for the delay, Art. 33(1)).
pub fn is_late(due_at: DateTime<Utc>, sent_at: DateTime<Utc>) -> bool {
    sent_at > due_at
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, TimeZone};

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// London's offset at `t`: GMT, or BST from the last Sunday of March 01:00 UTC to the
    /// last Sunday of October 01:00 UTC (2026: 29 March and 25 October).
    fn london(t: DateTime<Utc>) -> FixedOffset {
        let bst = t >= utc(2026, 3, 29, 1, 0) && t < utc(2026, 10, 25, 1, 0);
        FixedOffset::east_opt(if bst { 3600 } else { 0 }).unwrap()
    }

    #[test]
    fn seventy_two_hours_across_the_spring_dst_change_are_72_elapsed_hours() {
        // Aware on Friday 27 March 2026 at 10:00 in London (GMT, so 10:00 UTC); the clocks
        // go forward on Sunday 29 March.
        let aware = utc(2026, 3, 27, 10, 0);
        let due_at = due(aware, 72);
        assert_eq!(due_at, utc(2026, 3, 30, 10, 0));
        assert_eq!((due_at - aware).num_hours(), 72);
        // In London the deadline reads 11:00 (BST): the wall clock says 73 hours later.
        let local = due_at.with_timezone(&london(due_at));
        assert_eq!(
            local.format("%Y-%m-%d %H:%M %:z").to_string(),
            "2026-03-30 11:00 +01:00"
        );
        // Counting 72 hours of wall-clock time instead (10:00 local on Monday) would be
        // 09:00 UTC, an hour early: that is not the rule.
        let wall_clock = utc(2026, 3, 30, 9, 0);
        assert_eq!(
            state(due_at, Risk::Risk, Some(wall_clock), due_at),
            DeadlineState::Met
        );
        assert_ne!(wall_clock, due_at);
    }

    #[test]
    fn seventy_two_hours_across_the_autumn_dst_change_are_72_elapsed_hours() {
        // Aware on Friday 23 October 2026 at 18:30 in London (BST, 17:30 UTC); the clocks
        // go back on Sunday 25 October.
        let aware = utc(2026, 10, 23, 17, 30);
        let due_at = due(aware, 72);
        assert_eq!(due_at, utc(2026, 10, 26, 17, 30));
        let local = due_at.with_timezone(&london(due_at));
        // 17:30 GMT: the wall clock shows 71 hours after 18:30 BST.
        assert_eq!(local.format("%H:%M %:z").to_string(), "17:30 +00:00");
        // One minute before the instant is in time, one minute after is overdue.
        let before = due_at - Duration::minutes(1);
        let after = due_at + Duration::minutes(1);
        assert_eq!(
            state(due_at, Risk::Unassessed, None, before),
            DeadlineState::Pending
        );
        assert_eq!(
            state(due_at, Risk::Unassessed, None, after),
            DeadlineState::Overdue
        );
    }

    #[test]
    fn seventy_two_hours_across_a_month_end_and_a_leap_day() {
        let aware = utc(2026, 1, 30, 22, 15);
        assert_eq!(due(aware, 72), utc(2026, 2, 2, 22, 15));
        let aware = utc(2026, 4, 29, 23, 59);
        assert_eq!(due(aware, 72), utc(2026, 5, 2, 23, 59));
        let aware = utc(2026, 12, 30, 12, 0);
        assert_eq!(due(aware, 72), utc(2027, 1, 2, 12, 0));
        // 2028 is a leap year: 27 February + 72 h is 1 March, not 2 March.
        let aware = utc(2028, 2, 27, 8, 0);
        assert_eq!(due(aware, 72), utc(2028, 3, 1, 8, 0));
    }

    #[test]
    fn a_deadline_is_met_late_overdue_or_not_required() {
        let due_at = utc(2026, 6, 4, 12, 0);
        let early = utc(2026, 6, 3, 12, 0);
        let late = utc(2026, 6, 5, 12, 0);
        assert_eq!(
            state(due_at, Risk::High, Some(early), late),
            DeadlineState::Met
        );
        assert_eq!(
            state(due_at, Risk::High, Some(due_at), late),
            DeadlineState::Met
        );
        assert_eq!(
            state(due_at, Risk::High, Some(late), late),
            DeadlineState::Late
        );
        assert_eq!(
            state(due_at, Risk::High, None, late),
            DeadlineState::Overdue
        );
        assert_eq!(
            state(due_at, Risk::Unassessed, None, early),
            DeadlineState::Pending
        );
        assert_eq!(
            state(due_at, Risk::Unlikely, None, late),
            DeadlineState::NotRequired
        );
        // A notification sent anyway is still reported as it was.
        assert_eq!(
            state(due_at, Risk::Unlikely, Some(early), late),
            DeadlineState::Met
        );
        assert!(is_late(due_at, late));
        assert!(!is_late(due_at, due_at));
    }

    proptest::proptest! {
        #[test]
        fn the_deadline_is_always_exactly_the_hours_after_awareness(
            secs in 0i64..4_102_444_800, hours in 1u32..=8760
        ) {
            let aware = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let due_at = due(aware, hours);
            proptest::prop_assert_eq!((due_at - aware).num_seconds(), i64::from(hours) * 3600);
            proptest::prop_assert_eq!(state(due_at, Risk::Risk, None, due_at), DeadlineState::Pending);
        }
    }
}
