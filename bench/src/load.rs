//! A closed-loop load driver: `concurrency` callers, each issuing the next call when the
//! previous one returns, for a fixed time.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// What one measurement saw.
#[derive(Debug, Default)]
pub struct Stats {
    /// Latencies of successful calls, in microseconds, sorted.
    latencies_us: Vec<u64>,
    /// Failed calls.
    errors: u64,
    /// Wall time.
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() as f64 - 1.0)).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)]
    }

    /// Successful calls.
    pub fn succeeded(&self) -> usize {
        self.latencies_us.len()
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Adds `other`, a later part of the same measurement: its calls and its time.
    pub fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    /// The JSON row for this measurement.
    pub fn to_json(&self, name: &str, concurrency: usize) -> Value {
        json!({
            "name": name,
            "concurrency": concurrency,
            "calls": self.latencies_us.len(),
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "throughput_per_s": (self.throughput() * 10.0).round() / 10.0,
            "p50_us": self.percentile(50.0),
            "p99_us": self.percentile(99.0),
        })
    }
}

/// Runs `call` from `concurrency` tasks for `duration` (after a short warm-up).
pub async fn run<F, Fut, E>(concurrency: usize, duration: Duration, call: F) -> Stats
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Send,
{
    // Warm-up: connections, caches, allocator.
    let warm_until = Instant::now() + duration.mul_f64(0.1).min(Duration::from_millis(500));
    while Instant::now() < warm_until {
        let _ = call().await;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match call().await {
                    Ok(()) => {
                        latencies.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut stats = Stats::default();
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            stats.latencies_us.extend(latencies);
            stats.errors += errors;
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies_us.sort_unstable();
    stats
}
