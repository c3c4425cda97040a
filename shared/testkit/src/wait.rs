//! Waiting for work a service does in the background: look again until it is done, for at
//! most a given time, and fail naming what never happened.
//!
//! ```no_run
//! # async fn demo(queue: impl Fn() -> usize) -> anyhow::Result<()> {
//! use std::time::Duration;
//! pdm_testkit::eventually("the queue is empty", Duration::from_secs(10), || {
//!     let left = queue();
//!     async move { Ok(left == 0) }
//! })
//! .await?;
//! # Ok(()) }
//! ```

use std::{future::Future, time::Duration};

/// How often [`eventually`] looks.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// What a check of [`eventually`] answers: done (`true`, `Some(value)`) or not yet.
pub trait Done {
    /// What [`eventually`] gives back once done: `()` for `bool`, `T` for `Option<T>`.
    type Value;

    /// `Some` when done.
    fn done(self) -> Option<Self::Value>;
}

impl Done for bool {
    type Value = ();

    fn done(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Done for Option<T> {
    type Value = T;

    fn done(self) -> Option<T> {
        self
    }
}

/// Runs `check` every [`POLL_EVERY`] until it answers done (`true` or `Some(value)`) and
/// gives the value; fails with `what` when it is still not done after `within`, and at
/// once with `check`'s error.
pub async fn eventually<R, F, Fut>(
    what: &str,
    within: Duration,
    check: F,
) -> anyhow::Result<R::Value>
where
    R: Done,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    eventually_every(what, within, POLL_EVERY, check).await
}

/// [`eventually`], looking every `every` instead of every [`POLL_EVERY`].
pub async fn eventually_every<R, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<R::Value>
where
    R: Done,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await?.done() {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn gives_the_value_once_the_check_is_done() -> anyhow::Result<()> {
        let tries = AtomicUsize::new(0);
        let value = eventually_every(
            "three tries",
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok((n == 3).then_some(n)) }
            },
        )
        .await?;
        assert_eq!(value, 3);
        Ok(())
    }

    #[tokio::test]
    async fn fails_naming_what_did_not_happen() {
        let result = eventually("the impossible", Duration::from_millis(1), || async {
            Ok(false)
        })
        .await;
        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("the impossible: not within"), "{error}");
    }

    #[tokio::test]
    async fn stops_at_the_first_error() {
        let tries = AtomicUsize::new(0);
        let result = eventually("an error", Duration::from_secs(5), || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err::<bool, _>(anyhow::anyhow!("broken")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
