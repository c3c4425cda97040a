//! The gRPC edge: validation, the rules, the register.

mod clocks;
mod convert;
mod incidents;
pub mod requests;

use std::sync::Arc;

use pdm_runtime::SharedClock;

use crate::{domain::regime::Regime, settings::Dpo, store::Store};

pub use clocks::{Deadline, deadlines, overdue};

/// The incidents service's gRPC handlers.
#[derive(Debug, Clone)]
pub struct IncidentsApi {
    store: Store,
    clock: SharedClock,
    regimes: Arc<Vec<Regime>>,
    dpo: Arc<Dpo>,
}

impl IncidentsApi {
    /// Handlers over `store`, with the regime table and the DPO's contact.
    pub fn new(store: Store, clock: SharedClock, regimes: Vec<Regime>, dpo: Dpo) -> Self {
        Self {
            store,
            clock,
            regimes: Arc::new(regimes),
            dpo: Arc::new(dpo),
        }
    }
}
