//! The gRPC edge: validation, the rules, the store, and purge runs.

mod convert;
pub mod requests;
mod retention;

use pdm_runtime::SharedClock;

use crate::{purge::Runner, store::Store};

/// The retention service's gRPC handlers.
#[derive(Debug, Clone)]
pub struct RetentionApi {
    store: Store,
    clock: SharedClock,
    runner: Runner,
}

impl RetentionApi {
    /// Handlers over `store`, starting runs with `runner`.
    pub fn new(store: Store, clock: SharedClock, runner: Runner) -> Self {
        Self {
            store,
            clock,
            runner,
        }
    }
}
