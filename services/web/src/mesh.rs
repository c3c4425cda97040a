//! The mesh as the pages use it: gRPC clients of identity and consent, called as
//! `svc/web` over mutual TLS.

use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
};
use pdm_runtime::{ServiceContext, client::TracedChannel};

/// The clients.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Accounts, sessions, deletion.
    pub identity: IdentityServiceClient<TracedChannel>,
    /// Purposes, consents, contact preferences.
    pub consent: ConsentServiceClient<TracedChannel>,
}

impl Mesh {
    /// Channels to the services `[services]` names, as the web caller.
    pub fn connect(ctx: &ServiceContext) -> anyhow::Result<Self> {
        Ok(Self {
            identity: IdentityServiceClient::new(ctx.channel("identity")?),
            consent: ConsentServiceClient::new(ctx.channel("consent")?),
        })
    }
}
