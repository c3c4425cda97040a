//! `pdm-client`: how a company service calls pdm.
//!
//! - [`PdmClient`] holds the channels to the mesh (mutual TLS with certificate files
//!   reloaded when they change, as the services do), built from the environment
//!   ([`PdmClient::from_env`]) or a [`Builder`].
//!   With `PDM_SPIFFE_ID` ([`Builder::spiffe_id`]) the client states its own identity
//!   (`spiffe://pdm.local/client/newsletter`): it names the certificate files, and
//!   `build` refuses certificates issued for anyone else.
//! - Typed facades, one per service a company service may call under the built-in
//!   policy: [`consent::ConsentClient`], [`identity::IdentityClient`],
//!   [`telemetry::TelemetryClient`], [`transfers::TransfersClient`],
//!   [`rights::RightsClient`]. Each call returns domain types and shares one call path:
//!   retries with backoff and jitter where safe ([`retry`]: reads, and writes that carry
//!   an idempotency key, which the facades make when the caller gives none), the call's
//!   deadline sent along, the W3C trace context of the current span, errors as
//!   [`PdmError`] with their field violations, preconditions and retry delays; consent
//!   writes return their consistency token. Every method the built-in policy grants
//!   `client:*` has a facade method; the privacy team's stay on the generated clients
//!   over [`PdmClient::channel`].
//! - [`gate::ConsentGate`] answers "may we process?" and "may we contact?" in-process from
//!   a bounded cache kept coherent by the ledger's change stream, failing closed when the
//!   stream has been down too long; [`layer::ConsentLayer`] puts it in front of a tower
//!   service.
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

mod builder;
mod call;
pub mod consent;
pub mod error;
pub mod gate;
pub mod identity;
pub mod layer;
pub mod retry;
pub mod rights;
pub mod telemetry;
mod trace;
pub mod transfers;

pub use builder::{Builder, ConfigError, PdmClient};
pub use consent::{ConsentClient, ConsistencyToken, Decision, Written};
pub use error::PdmError;
pub use gate::{ConsentGate, GateOptions, Verdict};
pub use identity::IdentityClient;
/// The consent service's enums (channels, message kinds, reasons, sources), as generated.
pub use pdm_proto::consent::v1 as types;
pub use rights::RightsClient;
pub use telemetry::TelemetryClient;
pub use transfers::TransfersClient;
