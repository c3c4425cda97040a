//! Retries: a call refused before any work (RESOURCE_EXHAUSTED: a rate limit or load
//! shedding) is tried again whatever it is; an idempotent call (a check, a read) also
//! after UNAVAILABLE. Waits double from `first_backoff` to `max_backoff` with full
//! jitter, never shorter than a RetryInfo delay, and never past the call's deadline.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::error::PdmError;

/// How calls are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry).
    pub max_attempts: u32,
    /// The first wait's upper bound.
    pub first_backoff: Duration,
    /// The longest wait's upper bound.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Whether a call may be repeated without doing its work twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Reads and checks.
    Idempotent,
    /// Writes: retried only when the server refused them before any work.
    NotIdempotent,
}

impl RetryPolicy {
    /// Whether `err` on attempt `attempt` (1-based) is worth another attempt.
    pub fn retries(&self, err: &PdmError, idempotence: Idempotence, attempt: u32) -> bool {
        if attempt >= self.max_attempts {
            return false;
        }
        match err {
            PdmError::ResourceExhausted { .. } => true,
            PdmError::Unavailable { .. } => idempotence == Idempotence::Idempotent,
            _ => false,
        }
    }

    /// The wait before attempt `attempt + 1`: a random time up to the doubled backoff
    /// (full jitter), at least what the server asked for.
    pub fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let ceiling = self
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jittered = ceiling.mul_f64(unit_random());
        asked.map_or(jittered, |asked| jittered.max(asked))
    }

    /// Runs `call` (given the time left before `deadline`) until it succeeds, fails in a
    /// way not worth retrying, or the deadline leaves no room for another attempt.
    pub async fn run<T, F, Fut>(
        &self,
        idempotence: Idempotence,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, PdmError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, PdmError>>,
    {
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PdmError::DeadlineExceeded);
            }
            let err = match call(left).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if !self.retries(&err, idempotence, attempt) {
                return Err(err);
            }
            let wait = self.backoff(attempt, err.retry_after());
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis(), error = %err, "pdm call retried");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A uniform number in [0, 1) from the operating system (jitter needs no more).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 1.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn unavailable() -> PdmError {
        PdmError::Unavailable {
            message: "down".into(),
            retry_after: None,
        }
    }

    #[test]
    fn only_refusals_are_retried_for_writes_and_unavailability_too_for_reads() {
        let policy = RetryPolicy::default();
        let exhausted = PdmError::ResourceExhausted {
            message: "rate".into(),
            retry_after: None,
        };
        assert!(policy.retries(&exhausted, Idempotence::NotIdempotent, 1));
        assert!(!policy.retries(&unavailable(), Idempotence::NotIdempotent, 1));
        assert!(policy.retries(&unavailable(), Idempotence::Idempotent, 1));
        assert!(!policy.retries(&unavailable(), Idempotence::Idempotent, 4));
        assert!(!policy.retries(&PdmError::NotFound("x".into()), Idempotence::Idempotent, 1));
    }

    #[test]
    fn backoff_doubles_within_its_ceiling_and_honours_the_servers_delay() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let wait = policy.backoff(attempt, None);
            assert!(wait <= policy.max_backoff, "{attempt}: {wait:?}");
            assert!(
                wait <= policy.first_backoff * (1 << (attempt - 1)),
                "{attempt}: {wait:?}"
            );
        }
        let asked = Duration::from_millis(700);
        assert!(policy.backoff(1, Some(asked)) >= asked);
    }

    #[tokio::test]
    async fn a_read_is_tried_again_until_it_succeeds_within_its_deadline() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            first_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = policy
            .run(Idempotence::Idempotent, deadline, |_| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 2 { Err(unavailable()) } else { Ok(n) } }
            })
            .await;
        assert_eq!(answer.ok(), Some(2));
        let write = policy
            .run(Idempotence::NotIdempotent, deadline, |_| async {
                Err::<(), _>(unavailable())
            })
            .await;
        assert!(matches!(write, Err(PdmError::Unavailable { .. })));
    }
}
