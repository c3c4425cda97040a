//! What a pdm service is to the binary and to the test kit: a name and a `run` function
//! taking its context, a pre-bound listener and a shutdown future.

use std::{future::Future, pin::Pin, sync::Arc};

use tokio::net::TcpListener;

use pdm_tls::identity::Caller;

use crate::{
    client::{self, TracedChannel},
    clock::SharedClock,
    keys::KEK_LEN,
    security::Security,
    settings::Settings,
};

/// A future that resolves when the service must stop.
pub type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The future a running service is.
pub type ServiceFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'static>>;

/// Everything a service needs from its process.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service this context is for (its certificate identity).
    pub name: &'static str,
    /// Certificates, caller policy and rate limits, shared by the process's services.
    pub security: Arc<Security>,
    /// Process-wide settings; the service reads its own section with `Settings::section`.
    pub settings: Arc<Settings>,
    /// The clock every time-dependent rule reads.
    pub clock: SharedClock,
    /// The key-encryption key that wraps per-subject data keys.
    pub kek: Arc<[u8; KEK_LEN]>,
}

impl ServiceContext {
    /// A channel to another service of the mesh, as this service (mutual TLS with its
    /// certificate unless TLS is off), carrying trace context.
    pub fn channel(&self, peer: &str) -> anyhow::Result<TracedChannel> {
        self.channel_with_timeout(peer, self.settings.server.request_timeout())
    }

    /// [`ServiceContext::channel`] with a per-call timeout of its own.
    pub fn channel_with_timeout(
        &self,
        peer: &str,
        call_timeout: std::time::Duration,
    ) -> anyhow::Result<TracedChannel> {
        let endpoint = self.settings.endpoint(peer)?;
        let me = Caller::Service(self.name.to_owned());
        let tls = self.security.client_tls(&me)?;
        client::channel_for(
            &endpoint,
            call_timeout,
            tls,
            self.security.identity_header(&me),
        )
    }

    /// The same context for another service of the process.
    pub fn for_service(&self, name: &'static str) -> Self {
        Self {
            name,
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
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
