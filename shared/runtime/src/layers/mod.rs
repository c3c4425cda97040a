//! The tower layers every pdm server runs, one concern per file. The stack, outermost
//! first (see [`crate::server`]):
//!
//! 1. [`trace`]: a server span per call (W3C parent from the headers), its status code,
//!    and one log line per call: the outermost layer, so it sees timeouts and load shedding;
//! 2. [`metrics`]: every call counted with its status code and duration (Prometheus),
//!    refusals of the layers below included;
//! 3. [`authz`]: the caller named by its client certificate must be allowed the method
//!    (`PERMISSION_DENIED` otherwise); the caller is handed to the handlers;
//! 4. [`rate_limit`]: each caller's token bucket (`RESOURCE_EXHAUSTED` past it);
//! 5. [`timeout`]: the call's deadline (the caller's `grpc-timeout` or the server's bound,
//!    whichever is sooner) answered with `DEADLINE_EXCEEDED`;
//! 6. [`load_shed`]: at most `server.concurrency_limit` calls in flight per server; the
//!    rest are answered `RESOURCE_EXHAUSTED` at once instead of queueing without bound;
//! 7. [`bad_body`]: a request body that is not the method's message answers
//!    `INVALID_ARGUMENT` naming the expected type (tonic's decoder says `INTERNAL`);
//! 8. [`catch_panic`]: a handler that panics answers `INTERNAL` with an error id, and the
//!    connection and the service carry on.
//!
//! On the calling side, [`client_trace`] wraps every channel to another service (see
//! [`crate::client`]): a client span per call, whose context the server's [`trace`]
//! layer continues.

pub mod authz;
pub mod bad_body;
pub mod catch_panic;
pub mod categories;
pub mod client_trace;
pub mod grpc_status;
pub mod load_shed;
pub mod methods;
pub mod metrics;
pub mod rate_limit;
pub mod timeout;
pub mod trace;

use std::{future::Future, pin::Pin};

/// The boxed future our layers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Health checks bypass load shedding: probes must answer while the server is busy.
pub(crate) fn is_health_check(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}
