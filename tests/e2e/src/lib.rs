//! The black-box suite: the `pdm` binary that `make run` builds, run as a child process
//! (`PDM_BIN`), called over mutual TLS like any client of the company would, and killed
//! with `SIGKILL` where a test needs a real crash. Nothing of the services' code is linked.
//!
//! `make e2e` builds the binary and runs this suite on SQLite, then on PostgreSQL.
#![forbid(unsafe_code)]

pub mod backend;
pub mod bodies;
pub mod checks;
pub mod fields;
pub mod grpc;
pub mod people;
pub mod process;
pub mod stall;
pub mod suite;
pub mod world;

pub use backend::Backend;
pub use process::{Caller, Pdm, Replica};
pub use suite::Suite;
