//! How the delivery of a message to a subject goes: what a failed attempt means, and when
//! the next one is due (the states of an outbox row: [`crate::store::MessageStatus`]).
//! No I/O.
//!
//! A message is tried at once, then again after a backoff that doubles from
//! `rights.smtp_retry_secs` up to `rights.smtp_max_retry_secs`, until it is sent or
//! `rights.smtp_max_attempts` attempts have failed; a refusal of the message itself (its
//! recipient or its content, an SMTP 5yz reply to RCPT or DATA) fails it at once, since
//! sending it again cannot help. A FAILED message, like a SENT one, keeps no address.

use chrono::{DateTime, Duration, Utc};

/// What went wrong with an attempt: stored in `outbox.last_error` and shown on the
/// request. A category, never a server's words (a reply may quote the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The relay could not be reached.
    Connect,
    /// TLS failed: STARTTLS not offered, the handshake failed or the certificate is not
    /// trusted. Nothing is ever sent in the clear instead.
    Tls,
    /// Authentication failed, was not offered, or the password file is unreadable.
    Auth,
    /// The relay refused our sender (5yz to MAIL FROM): its configuration, not the message.
    Sender,
    /// The relay refused the recipient for good (5yz to RCPT TO). Permanent.
    Recipient,
    /// The relay refused the message for good (5yz to DATA). Permanent.
    Message,
    /// A temporary refusal (4yz): try again later.
    Deferred,
    /// The relay answered something SMTP does not allow here.
    Protocol,
    /// The relay did not answer in time.
    Timeout,
    /// The message could not be prepared here (its key, the mailbox file).
    Local,
}

impl ErrorCategory {
    /// Every category.
    pub const ALL: [Self; 10] = [
        Self::Connect,
        Self::Tls,
        Self::Auth,
        Self::Sender,
        Self::Recipient,
        Self::Message,
        Self::Deferred,
        Self::Protocol,
        Self::Timeout,
        Self::Local,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::Sender => "sender",
            Self::Recipient => "recipient",
            Self::Message => "message",
            Self::Deferred => "deferred",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Local => "local",
        }
    }

    /// The category of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether trying again cannot help: the message itself was refused for good.
    pub fn permanent(self) -> bool {
        matches!(self, Self::Recipient | Self::Message)
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hard delivery tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts before a message is given up (at least 1).
    pub max_attempts: i32,
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
}

impl Default for Retry {
    /// Ten attempts over about four hours: 1, 2, 4 … minutes, at most an hour apart.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            first: Duration::seconds(60),
            max: Duration::seconds(3600),
        }
    }
}

impl Retry {
    /// The wait after the `failures`-th failed attempt (1 for the first): `first`
    /// doubled each time, at most `max`.
    pub fn backoff(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
        let first = self.first.num_seconds().max(1);
        let max = self.max.num_seconds().max(first);
        Duration::seconds(first.saturating_mul(1i64 << doublings).min(max))
    }

    /// What follows a failed attempt, the `attempts`-th (counting this one).
    pub fn after_failure(
        &self,
        attempts: i32,
        category: ErrorCategory,
        now: DateTime<Utc>,
    ) -> Next {
        if category.permanent() || attempts >= self.max_attempts.max(1) {
            Next::GiveUp
        } else {
            Next::RetryAt(now + self.backoff(attempts))
        }
    }

    /// The longest a message can stay pending through failures: the sum of the waits.
    pub fn span(&self) -> Duration {
        (1..self.max_attempts.max(1))
            .map(|n| self.backoff(n))
            .fold(Duration::zero(), |a, b| a + b)
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again then.
    RetryAt(DateTime<Utc>),
    /// Mark the message FAILED and forget its address.
    GiveUp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn categories_round_trip_through_their_stored_names() {
        for c in ErrorCategory::ALL {
            assert_eq!(ErrorCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCategory::parse("550 5.1.1 <ada@example.com>"), None);
    }

    #[test]
    fn only_a_refusal_of_the_message_itself_is_permanent() {
        let permanent: Vec<_> = ErrorCategory::ALL
            .into_iter()
            .filter(|c| c.permanent())
            .collect();
        assert_eq!(
            permanent,
            [ErrorCategory::Recipient, ErrorCategory::Message]
        );
    }

    #[test]
    fn the_default_tries_ten_times_over_about_four_hours() {
        let retry = Retry::default();
        let waits: Vec<i64> = (1..10).map(|n| retry.backoff(n).num_seconds()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(retry.span(), Duration::seconds(14_580));
        assert_eq!(
            retry.after_failure(9, ErrorCategory::Tls, at()),
            Next::RetryAt(at() + Duration::seconds(3600))
        );
        assert_eq!(
            retry.after_failure(10, ErrorCategory::Tls, at()),
            Next::GiveUp
        );
    }

    #[test]
    fn a_refused_recipient_is_given_up_at_once() {
        let retry = Retry::default();
        assert_eq!(
            retry.after_failure(1, ErrorCategory::Recipient, at()),
            Next::GiveUp
        );
        assert_eq!(
            retry.after_failure(1, ErrorCategory::Deferred, at()),
            Next::RetryAt(at() + Duration::seconds(60))
        );
    }

    proptest! {
        #[test]
        fn backoff_grows_and_stays_within_its_bounds(
            first in 1i64..10_000,
            extra in 0i64..100_000,
            failures in 1i32..200,
        ) {
            let retry = Retry {
                max_attempts: 10,
                first: Duration::seconds(first),
                max: Duration::seconds(first + extra),
            };
            let wait = retry.backoff(failures);
            prop_assert!(wait >= retry.first && wait <= retry.max);
            prop_assert!(retry.backoff(failures + 1) >= wait);
        }

        #[test]
        fn a_message_is_given_up_exactly_at_the_last_attempt(
            max_attempts in 1i32..50,
            attempts in 1i32..60,
        ) {
            let retry = Retry { max_attempts, ..Retry::default() };
            let next = retry.after_failure(attempts, ErrorCategory::Connect, at());
            prop_assert_eq!(next == Next::GiveUp, attempts >= max_attempts);
        }
    }
}
