//! The gRPC edge: request validation, calls into the store, responses.

mod convert;
mod identity;
pub mod requests;
mod subject_data;

use std::sync::Arc;

use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
};
use pdm_runtime::{SharedClock, client::TracedChannel};

use crate::{hash_pool::HashPool, settings::IdentitySettings, store::Store};

/// The identity service's gRPC handlers (IdentityService and SubjectDataService).
#[derive(Debug, Clone)]
pub struct IdentityApi {
    store: Store,
    clock: SharedClock,
    settings: IdentitySettings,
    /// A hash of a random password, verified against when an account does not exist so
    /// unknown accounts take as long to refuse as wrong passwords.
    dummy_hash: Arc<String>,
    /// The bounded workers every password hash and check runs on.
    hashes: HashPool,
    /// The rights service, when deletions go through it.
    rights: Option<RightsServiceClient<TracedChannel>>,
    /// The consent service, asked for explicit consent before special categories are
    /// stored (connected on first use: tickets that declare none never call it).
    consent: ConsentServiceClient<TracedChannel>,
}

impl IdentityApi {
    /// Handlers over `store`.
    pub async fn new(
        store: Store,
        clock: SharedClock,
        settings: IdentitySettings,
        rights: Option<RightsServiceClient<TracedChannel>>,
        consent: ConsentServiceClient<TracedChannel>,
    ) -> anyhow::Result<Self> {
        let hashes = HashPool::start(settings.hash_workers, settings.hash_queue)?;
        let secret = pdm_crypto::random_token(24)?;
        let dummy_hash = hashes
            .hash(secret)
            .await
            .map_err(|e| anyhow::anyhow!("dummy hash: {e}"))?;
        Ok(Self {
            hashes,
            store,
            clock,
            settings,
            dummy_hash: Arc::new(dummy_hash),
            rights,
            consent,
        })
    }
}
