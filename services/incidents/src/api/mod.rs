//! The gRPC edge: validation, the rules, the register.

mod affected;
pub mod assessments;
pub mod check;
mod clocks;
mod convert;
mod incidents;
mod notify;
mod regions;
pub mod requests;

use std::{collections::BTreeMap, sync::Arc};

use pdm_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
    subject::v1::subject_data_service_client::SubjectDataServiceClient,
};
use pdm_runtime::{SharedClock, client::TracedChannel};

use crate::{domain::regime::Regime, settings::Dpo, store::Store};

pub use clocks::{Deadline, deadlines, overdue};

/// The incidents service's gRPC handlers.
#[derive(Debug, Clone)]
pub struct IncidentsApi {
    store: Store,
    clock: SharedClock,
    regimes: Arc<Vec<Regime>>,
    dpo: Arc<Dpo>,
    /// SubjectData of each data-holding service `FindAffected` asks, by name.
    peers: Arc<BTreeMap<String, SubjectDataServiceClient<TracedChannel>>>,
    /// The rights service, which sends the breach notices (`NotifyPeople`).
    rights: Option<RightsServiceClient<TracedChannel>>,
    /// The identity service, which `FindAffected` asks the affected people's regions.
    identity: Option<IdentityServiceClient<TracedChannel>>,
}

impl IncidentsApi {
    /// Handlers over `store`, with the regime table and the DPO's contact.
    pub fn new(store: Store, clock: SharedClock, regimes: Vec<Regime>, dpo: Dpo) -> Self {
        Self {
            store,
            clock,
            regimes: Arc::new(regimes),
            dpo: Arc::new(dpo),
            peers: Arc::new(BTreeMap::new()),
            rights: None,
            identity: None,
        }
    }

    /// The same, asking `peers` (SubjectData by service name) who is affected.
    pub fn with_peers(
        mut self,
        peers: BTreeMap<String, SubjectDataServiceClient<TracedChannel>>,
    ) -> Self {
        self.peers = Arc::new(peers);
        self
    }

    /// The same, asking `identity` where the affected people live.
    pub fn with_identity(mut self, identity: IdentityServiceClient<TracedChannel>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The same, telling people of a breach through `rights`.
    pub fn with_rights(mut self, rights: RightsServiceClient<TracedChannel>) -> Self {
        self.rights = Some(rights);
        self
    }
}
