//! Per-caller rate limits: a token bucket per authenticated caller (one for every
//! plaintext caller together). Past the limit, calls are answered `RESOURCE_EXHAUSTED`
//! with a `RetryInfo` at once. Health checks are never limited.

use std::{
    collections::HashMap,
    future::ready,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tower::{Layer, Service};

use crate::sampled::Sampler;

use super::{BoxFuture, is_health_check};
use pdm_tls::identity::Caller;

/// Calls per second and burst for one caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once above the sustained rate.
    pub burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The limits: a default, and overrides per caller (by name, e.g. `telemetry`).
#[derive(Debug)]
pub struct Limits {
    default: Rate,
    overrides: HashMap<String, Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limits {
    /// Limits with a default rate and per-caller overrides.
    pub fn new(default: Rate, overrides: HashMap<String, Rate>) -> Self {
        Self {
            default,
            overrides,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// No limit at all (servers outside the mesh's security settings).
    pub fn unlimited() -> Self {
        Self::new(
            Rate {
                per_second: f64::MAX,
                burst: f64::MAX,
            },
            HashMap::new(),
        )
    }

    /// Takes a token for `caller`; `Err(wait)` when there is none.
    pub fn take(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let rate = self.overrides.get(caller).copied().unwrap_or(self.default);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Look up before inserting: the hot path allocates nothing.
        if !buckets.contains_key(caller) {
            buckets.insert(
                caller.to_owned(),
                Bucket {
                    tokens: rate.burst,
                    refilled: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(caller) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(
                missing / rate.per_second.max(f64::EPSILON),
            ))
        }
    }
}

/// Adds [`RateLimit`] to a service.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limits: Arc<Limits>,
    sampler: Arc<Sampler>,
}

impl RateLimitLayer {
    /// Shared limits (clones share the buckets: the limit is per server, per caller).
    pub fn new(limits: Arc<Limits>) -> Self {
        Self {
            limits,
            sampler: Arc::new(Sampler::new()),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limits: self.limits.clone(),
            sampler: self.sampler.clone(),
        }
    }
}

/// Refuses calls past the caller's rate.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limits: Arc<Limits>,
    sampler: Arc<Sampler>,
}

impl<S, B, R> Service<http::Request<B>> for RateLimit<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !is_health_check(request.uri().path()) {
            let caller = request
                .extensions()
                .get::<Caller>()
                .map_or_else(|| "anonymous".to_owned(), ToString::to_string);
            if let Err(wait) = self.limits.take(&caller, Instant::now()) {
                if let Some(left_out) = self.sampler.refusal(&format!("rate {caller}")) {
                    tracing::info!(caller = %caller, left_out, "rate limit reached");
                }
                let status = crate::error::retry_after("rate limit reached; retry later", wait);
                return Box::pin(ready(Ok(status.into_http())));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limits = Limits::new(
            Rate {
                per_second: 10.0,
                burst: 3.0,
            },
            HashMap::new(),
        );
        let t0 = Instant::now();
        assert!((0..3).all(|_| limits.take("a", t0).is_ok()));
        assert!(limits.take("a", t0).is_err());
        assert!(
            limits.take("b", t0).is_ok(),
            "callers have buckets of their own"
        );
        assert!(
            limits.take("a", t0 + Duration::from_millis(100)).is_ok(),
            "a token per 100 ms"
        );
        assert!(limits.take("a", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn overrides_apply_by_caller() {
        let overrides = [(
            "telemetry".to_owned(),
            Rate {
                per_second: 1.0,
                burst: 100.0,
            },
        )]
        .into_iter()
        .collect();
        let limits = Limits::new(
            Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            overrides,
        );
        let t0 = Instant::now();
        assert!((0..100).all(|_| limits.take("telemetry", t0).is_ok()));
        assert!(limits.take("consent", t0).is_ok() && limits.take("consent", t0).is_err());
    }
}
