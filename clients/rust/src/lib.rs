//! `pdm-client`: how a company service calls pdm.
//!
//! - [`PdmClient`] holds the channels to the mesh (mutual TLS with certificate files
//!   reloaded when they change, as the services do), built from the environment
//!   ([`PdmClient::from_env`]) or a [`Builder`].
//! - [`consent::ConsentClient`] is the consent service as typed calls: retries with
//!   backoff and jitter where safe ([`retry`]), the call's deadline sent along, the W3C
//!   trace context of the current span, errors as [`PdmError`] with their field
//!   violations and retry delays, and the consistency token of every write.
//! - [`gate::ConsentGate`] answers "may we process?" and "may we contact?" in-process from
//!   a bounded cache kept coherent by the ledger's change stream, failing closed when the
//!   stream has been down too long; [`layer::ConsentLayer`] puts it in front of a tower
//!   service.
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

mod builder;
pub mod consent;
pub mod error;
pub mod gate;
pub mod layer;
pub mod retry;
mod trace;

pub use builder::{Builder, ConfigError, PdmClient};
pub use consent::{ConsentClient, ConsistencyToken, Decision, Written};
pub use error::PdmError;
pub use gate::{ConsentGate, GateOptions, Verdict};
/// The consent service's enums (channels, message kinds, reasons, sources), as generated.
pub use pdm_proto::consent::v1 as types;
