//! Mutual TLS for every gRPC connection of the mesh: certificates from files reloaded when
//! they change, the caller identified by the SPIFFE id in its certificate, and the
//! identity header a sidecar passes in plaintext mode.
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

pub mod config;
pub mod connector;
pub mod identity;
pub mod incoming;
pub mod layout;
pub mod sidecar;
