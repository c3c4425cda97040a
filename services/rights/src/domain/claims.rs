//! When the worker claims more tasks.

/// The most free permits a full worker waits for before it claims again.
const MOST_AWAITED: usize = 16;

/// Whether `free` of `parallelism` permits are worth a claim when due tasks are waiting.
/// With every permit taken, each task's end frees one, and claiming then would take one
/// task a claim: a claim and a read of its requests per task. Waiting for a quarter of
/// the permits (at most [`MOST_AWAITED`]) makes each claim take several; a worker running
/// fewer tasks than that claims at once, so a lone request never waits.
pub fn worth_a_claim(free: usize, parallelism: usize) -> bool {
    let parallelism = parallelism.max(1);
    let batch = (parallelism / 4).clamp(1, MOST_AWAITED);
    let running = parallelism.saturating_sub(free);
    free > 0 && (free >= batch || running < batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_worker_waits_for_a_quarter_of_its_permits() {
        assert!(!worth_a_claim(0, 32));
        assert!(!worth_a_claim(1, 32));
        assert!(!worth_a_claim(7, 32));
        assert!(worth_a_claim(8, 32));
        assert!(worth_a_claim(32, 32));
    }

    #[test]
    fn a_small_worker_claims_whenever_a_permit_is_free() {
        for parallelism in 1..8 {
            assert!(worth_a_claim(1, parallelism), "{parallelism}");
            assert!(!worth_a_claim(0, parallelism), "{parallelism}");
        }
    }

    #[test]
    fn a_large_worker_waits_for_no_more_than_sixteen() {
        assert!(!worth_a_claim(15, 1024));
        assert!(worth_a_claim(16, 1024));
        // 15 running: fewer than it would wait for, so it claims at once.
        assert!(worth_a_claim(1009, 1024));
    }
}
