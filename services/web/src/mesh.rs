//! The mesh as the pages use it: gRPC clients of identity, consent and rights, called as
//! `svc/web` over mutual TLS.

use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
};
use pdm_runtime::{ServiceContext, client::TracedChannel};

/// The clients.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Accounts, sessions, deletion.
    pub identity: IdentityServiceClient<TracedChannel>,
    /// Purposes, consents, contact preferences.
    pub consent: ConsentServiceClient<TracedChannel>,
    /// The person's own data-subject requests.
    pub rights: RightsServiceClient<TracedChannel>,
}

impl Mesh {
    /// Channels to the services `[services]` names, as the web caller.
    pub fn connect(ctx: &ServiceContext) -> anyhow::Result<Self> {
        Ok(Self {
            identity: IdentityServiceClient::new(ctx.channel("identity")?),
            consent: ConsentServiceClient::new(ctx.channel("consent")?),
            rights: RightsServiceClient::new(ctx.channel("rights")?),
        })
    }
}
