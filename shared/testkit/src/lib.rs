//! Spawn any set of pdm services on ephemeral ports, in-process, against SQLite or a fresh
//! PostgreSQL database, and talk to them over real gRPC:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use pdm_testkit::TestMesh;
//! let mesh = TestMesh::new().with(pdm_identity::Identity).start().await?;
//! let mut identity = mesh.identity();
//! # Ok(()) }
//! ```
//!
//! `PDM_TEST_DATABASE=postgres` selects PostgreSQL (`PDM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`): each mesh gets its own database,
//! dropped when the mesh is.
#![forbid(unsafe_code)]

pub mod assert;
mod clock;
mod database;
pub mod fake;
pub mod faults;
mod gated;
mod logs;
mod mesh;
mod wait;
pub mod web;

pub use clock::{start_clock, start_time};
pub use database::{Backend, TestDatabase};
pub use gated::{GatedServer, GatedSubjectData, PANIC_SUBJECT};
pub use logs::{LogCapture, captured_logs, export_spans};
pub use mesh::{Mesh, Replica, TEST_CLIENT, TestMesh, client_tls};
pub use wait::{Done, POLL_EVERY, eventually, eventually_every};
