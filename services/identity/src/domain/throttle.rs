//! Sign-in throttling, at two levels:
//! - per (account, client): after a few failures, further attempts *from that client* are
//!   refused for a while, doubling each time, so one client (or an attacker holding its
//!   certificate) cannot lock a person out of every other client;
//! - per account across clients: past a higher count every attempt is slowed down (never
//!   refused), which caps guessing spread over many clients without a lock-out.
//!
//! Keys are blind indexes of the email or subject id whether or not an account exists, so
//! throttling reveals nothing about which accounts are registered.

use chrono::{DateTime, Duration, Utc};

/// Failures allowed before attempts are slowed down.
pub const FREE_FAILURES: u32 = 5;
/// Longest wait.
pub const MAX_LOCK: Duration = Duration::minutes(15);

/// Failures across all clients before every attempt is slowed down.
pub const GLOBAL_FREE_FAILURES: u32 = 20;
/// Slow-down added per failure past `GLOBAL_FREE_FAILURES`.
const SLOW_DOWN_STEP: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest slow-down.
pub const MAX_SLOW_DOWN: std::time::Duration = std::time::Duration::from_secs(2);

/// The throttle key of one (account, client) pair, before blind indexing.
pub fn pair_key(domain: &str, account: &str, client: &str) -> String {
    format!("{domain}:pair:{account}\u{0}{client}")
}

/// The throttle key of an account across clients, before blind indexing.
pub fn account_key(domain: &str, account: &str) -> String {
    format!("{domain}:all:{account}")
}

/// How long an attempt is held back after `failures` failures across all clients.
pub fn slow_down(failures: u32) -> std::time::Duration {
    if failures < GLOBAL_FREE_FAILURES {
        return std::time::Duration::ZERO;
    }
    SLOW_DOWN_STEP
        .saturating_mul(failures - GLOBAL_FREE_FAILURES + 1)
        .min(MAX_SLOW_DOWN)
}

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
    fn the_account_wide_count_slows_down_without_locking() {
        use std::time::Duration as Std;
        assert_eq!(slow_down(0), Std::ZERO);
        assert_eq!(slow_down(19), Std::ZERO);
        assert_eq!(slow_down(20), Std::from_millis(100));
        assert_eq!(slow_down(24), Std::from_millis(500));
        assert_eq!(slow_down(10_000), MAX_SLOW_DOWN);
    }

    #[test]
    fn pair_keys_separate_clients_and_accounts() {
        assert_ne!(
            pair_key("d", "a", "client:x"),
            pair_key("d", "a", "client:y")
        );
        assert_ne!(pair_key("d", "a", "b"), pair_key("d", "ab", ""));
        assert_ne!(pair_key("d", "a", "c"), account_key("d", "a"));
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
