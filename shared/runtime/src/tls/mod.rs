//! Mutual TLS for every gRPC connection of the mesh: certificates from files reloaded when
//! they change, the caller identified by the SPIFFE id in its certificate.

pub mod config;
pub mod connector;
pub mod identity;
pub mod incoming;
pub mod pki;
pub mod sidecar;
