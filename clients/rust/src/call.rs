//! What every facade shares: one call of a generated client with the call's deadline sent
//! along, the current span's trace context, retries where [`Idempotence`] allows them,
//! and errors as [`PdmError`]; and the small conversions of answers into domain types.

use std::{
    future::Future,
    time::{Duration, Instant, SystemTime},
};

use tonic::{Request, Response, Status};

use crate::{
    error::PdmError,
    retry::{Idempotence, RetryPolicy},
    trace,
};

/// A generated client with the deadline and retry policy of its facade.
#[derive(Debug, Clone)]
pub(crate) struct Stub<C> {
    client: C,
    timeout: Duration,
    retry: RetryPolicy,
}

impl<C: Clone> Stub<C> {
    /// Calls through `client`, each call within `timeout` (retries included).
    pub(crate) fn new(client: C, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            client,
            timeout,
            retry,
        }
    }

    /// Sends `message` with `send` until it succeeds or the retry policy gives up; each
    /// attempt carries the time left as its gRPC deadline.
    pub(crate) async fn call<M, T, F, Fut>(
        &self,
        idempotence: Idempotence,
        message: M,
        mut send: F,
    ) -> Result<T, PdmError>
    where
        M: Clone,
        F: FnMut(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        self.retry
            .run(idempotence, deadline, |left| {
                let mut request = Request::new(message.clone());
                request.set_timeout(left);
                trace::inject(request.metadata_mut());
                let fut = send(self.client.clone(), request);
                async move { fut.await.map(Response::into_inner).map_err(PdmError::from) }
            })
            .await
    }

    /// Opens a server stream: no deadline (a stream lasts as long as it has something to
    /// say) and no retry (a stream cut halfway is the caller's to resume), but the trace
    /// context all the same.
    pub(crate) async fn open<M, T, F, Fut>(&self, message: M, send: F) -> Result<T, PdmError>
    where
        F: FnOnce(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut request = Request::new(message);
        trace::inject(request.metadata_mut());
        Ok(send(self.client.clone(), request).await?.into_inner())
    }
}

/// An answer without a part the contract promises: the server broke it.
pub(crate) fn missing(what: &str) -> PdmError {
    PdmError::Other(Status::internal(format!("the answer has no {what}")))
}

/// A timestamp of an answer (absent, or beyond what `SystemTime` holds: none).
pub(crate) fn time(timestamp: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    timestamp.and_then(|t| SystemTime::try_from(t).ok())
}

/// A text field where the proto's empty string means "none".
pub(crate) fn nonempty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// A fresh idempotency key for a write the caller gave none: letters only, so it can
/// never look like a payment card number (which the services refuse in any field).
pub(crate) fn new_key() -> String {
    let mut bytes = [0u8; 24];
    // Without randomness the key is still unique enough per process for one retry loop:
    // the nanoseconds since the epoch decide it.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    let letters: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
    format!("pdmc-{letters}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_letters_the_services_accept() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.len() <= 128);
        assert!(
            a.strip_prefix("pdmc-")
                .is_some_and(|rest| rest.bytes().all(|c| c.is_ascii_lowercase())),
            "{a}"
        );
    }
}
