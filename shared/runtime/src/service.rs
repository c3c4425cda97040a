//! What a pdm service is to the binary and to the test kit: a name and a `run` function
//! taking its context, a pre-bound listener and a shutdown future.

use std::{future::Future, pin::Pin, sync::Arc};

use tokio::net::TcpListener;

use crate::{clock::SharedClock, keys::KEK_LEN, settings::Settings};

/// A future that resolves when the service must stop.
pub type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The future a running service is.
pub type ServiceFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'static>>;

/// Everything a service needs from its process.
#[derive(Clone)]
pub struct ServiceContext {
    /// Process-wide settings; the service reads its own section with `Settings::section`.
    pub settings: Arc<Settings>,
    /// The clock every time-dependent rule reads.
    pub clock: SharedClock,
    /// The key-encryption key that wraps per-subject data keys.
    pub kek: Arc<[u8; KEK_LEN]>,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ServiceContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A service of the mesh.
pub trait MeshService: Send + Sync + 'static {
    /// Its name, as in `pdm serve <name>` and `[services.<name>]`.
    fn name(&self) -> &'static str;

    /// Serves on `listener` until `shutdown` resolves.
    fn run(
        &self,
        ctx: ServiceContext,
        listener: TcpListener,
        shutdown: ShutdownSignal,
    ) -> ServiceFuture;
}
