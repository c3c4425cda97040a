//! Sign-in throttling: after a few failures for one email address, further attempts wait,
//! doubling each time. Keyed by the email's blind index whether or not an account exists,
//! so throttling reveals nothing about which addresses are registered.

use chrono::{DateTime, Duration, Utc};

/// Failures allowed before attempts are slowed down.
pub const FREE_FAILURES: u32 = 5;
/// Longest wait.
pub const MAX_LOCK: Duration = Duration::minutes(15);

/// How long sign-in stays locked after `failures` consecutive failures.
pub fn lock_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::zero();
    }
    let exponent = (failures - FREE_FAILURES).min(20);
    let seconds = 1i64 << exponent;
    Duration::seconds(seconds).min(MAX_LOCK)
}

/// Whether an attempt at `now` must wait, and for how long.
pub fn wait(locked_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    locked_until
        .filter(|until| *until > now)
        .map(|until| until - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_after_the_free_failures_and_are_capped() {
        assert_eq!(lock_after(0), Duration::zero());
        assert_eq!(lock_after(4), Duration::zero());
        assert_eq!(lock_after(5), Duration::seconds(1));
        assert_eq!(lock_after(6), Duration::seconds(2));
        assert_eq!(lock_after(9), Duration::seconds(16));
        assert_eq!(lock_after(40), MAX_LOCK);
    }

    #[test]
    fn a_past_lock_does_not_wait() {
        let now = Utc::now();
        assert_eq!(wait(None, now), None);
        assert_eq!(wait(Some(now - Duration::seconds(1)), now), None);
        assert_eq!(
            wait(Some(now + Duration::seconds(3)), now),
            Some(Duration::seconds(3))
        );
    }
}
