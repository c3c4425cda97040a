//! Log lines for refusals, sampled: under a flood (a client past its rate limit, a
//! misconfigured caller the policy refuses) one line per call would write the flood into
//! the log (117 MB in ten seconds, measured). A line goes out for the first refusal of a
//! kind and then at most once per [`WINDOW`], with how many were left out since; the
//! metrics (`pdm_rpc_requests_total` by code) keep the exact numbers.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// At most one line per kind of refusal in this much time.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Kinds remembered before the oldest are forgotten (callers and methods are bounded
/// sets, this only guards memory).
const MAX_KINDS: usize = 4096;

struct Seen {
    logged_at: Instant,
    left_out: u64,
}

/// The refusals one layer of one server has logged recently.
#[derive(Default)]
pub struct Sampler {
    seen: Mutex<HashMap<String, Seen>>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

impl Sampler {
    /// Nothing logged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to log this refusal of `kind` now; `Some(n)` with the refusals of that
    /// kind left out since the last line, `None` to stay silent.
    pub fn refusal(&self, kind: &str) -> Option<u64> {
        self.refusal_at(kind, Instant::now())
    }

    fn refusal_at(&self, kind: &str, now: Instant) -> Option<u64> {
        refusal_in(&self.seen, kind, now)
    }
}

fn refusal_in(seen: &Mutex<HashMap<String, Seen>>, kind: &str, now: Instant) -> Option<u64> {
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = seen.get_mut(kind) {
        if now.duration_since(entry.logged_at) < WINDOW {
            entry.left_out += 1;
            return None;
        }
        let left_out = entry.left_out;
        entry.logged_at = now;
        entry.left_out = 0;
        return Some(left_out);
    }
    if seen.len() >= MAX_KINDS {
        seen.retain(|_, s| now.duration_since(s.logged_at) < WINDOW);
        if seen.len() >= MAX_KINDS {
            seen.clear();
        }
    }
    seen.insert(
        kind.to_owned(),
        Seen {
            logged_at: now,
            left_out: 0,
        },
    );
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_count_left_out() {
        let sampler = Sampler::new();
        let start = Instant::now();
        let kind = "rate client:demo";
        assert_eq!(sampler.refusal_at(kind, start), Some(0));
        for i in 1..=1000 {
            assert_eq!(
                sampler.refusal_at(kind, start + Duration::from_millis(i)),
                None
            );
        }
        assert_eq!(
            sampler.refusal_at(kind, start + WINDOW + Duration::from_millis(1)),
            Some(1000)
        );
        assert_eq!(sampler.refusal_at("rate admin", start), Some(0));
        // Another server's layer keeps its own account.
        assert_eq!(Sampler::new().refusal_at(kind, start), Some(0));
    }
}
