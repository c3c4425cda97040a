//! The gRPC edge: validation, the rules, the log.

mod convert;
pub mod requests;
mod subject_data;
mod transfers;

use std::sync::Arc;

use pdm_crypto::Keyring;
use pdm_proto::consent::v1::consent_service_client::ConsentServiceClient;
use pdm_runtime::{
    SharedClock, SubjectId,
    client::TracedChannel,
    relationships::{Relationships, Scope},
};
use pdm_tls::identity::Caller;
use tonic::Status;

use crate::{domain::adequacy::AdequacyList, store::Store};

/// The transfers service's gRPC handlers (TransfersService and SubjectDataService).
#[derive(Debug, Clone)]
pub struct TransfersApi {
    store: Store,
    clock: SharedClock,
    adequacy: Arc<Vec<AdequacyList>>,
    consent: ConsentServiceClient<TracedChannel>,
    keyring: Keyring,
    /// Which subjects a company client may see (identity's links).
    relationships: Arc<Relationships>,
}

impl TransfersApi {
    /// Handlers over `store`.
    pub fn new(
        store: Store,
        clock: SharedClock,
        adequacy: Vec<AdequacyList>,
        consent: ConsentServiceClient<TracedChannel>,
        keyring: Keyring,
        relationships: Arc<Relationships>,
    ) -> Self {
        Self {
            store,
            clock,
            adequacy: Arc::new(adequacy),
            consent,
            keyring,
            relationships,
        }
    }

    /// Whether `caller` may see `subject`. Policy, "Data Security & Protection":
    /// restricted access; service providers get only what they need. A company client
    /// sees only the subjects it is linked with (identity's links); for any other the
    /// answer is the one for a subject that does not exist.
    async fn visible(&self, caller: Option<&Caller>, subject: &SubjectId) -> Result<bool, Status> {
        Ok(self
            .relationships
            .scope(caller, &subject.to_string())
            .await?
            == Scope::Allowed)
    }

    /// The pseudonym that replaces a subject id in the log after erasure.
    fn pseudonym(&self, subject: &SubjectId) -> String {
        let index = self
            .keyring
            .blind_index()
            .compute("transfers-subject", &subject.to_string());
        let hex: String = index.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}{hex}", crate::ERASED_PREFIX)
    }
}
