//! What every pdm service shares: settings, telemetry, the tower layers, the access
//! trail, database connection and migrations, server bootstrap, shutdown and error
//! mapping. Mutual TLS (`pdm-tls`) and metrics (`pdm-metrics`) are crates of their own.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

pub mod client;
pub mod db;
pub mod dpo;
pub mod erasure;
pub mod jobs;
pub mod key_store;
pub mod keys;
pub mod layers;
pub mod panic;
pub mod propagation;
pub mod relationships;
pub mod replicas;
pub mod sampled;
pub mod security;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod slot;
pub mod telemetry;
pub mod witnessing;

pub use pdm_core::{
    Clock, FieldViolations, ManualClock, SharedClock, SubjectId, SystemClock, clock, convert,
    error, ids, text,
};
pub use server::{Deferred, GrpcServer, Ready};
pub use service::{MeshService, ServiceContext, ServiceFuture, ShutdownSignal};
pub use settings::Settings;

/// Re-exported so services name the same versions.
pub use {sea_orm, tonic_types};
