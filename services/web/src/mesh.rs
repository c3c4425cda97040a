//! The mesh as the pages use it: gRPC clients of identity, consent and rights, called as
//! `svc/web` over mutual TLS; the console's also of transfers, retention, incidents and every
//! service's access trail, called for the signed-in operator (see [`acting`]).

use pdm_proto::{
    audit::v1::audit_service_client::AuditServiceClient,
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    incidents::v1::{
        assessments_service_client::AssessmentsServiceClient,
        incidents_service_client::IncidentsServiceClient,
    },
    retention::v1::retention_service_client::RetentionServiceClient,
    rights::v1::rights_service_client::RightsServiceClient,
    transfers::v1::transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{ServiceContext, client::TracedChannel};
use pdm_tls::identity::{ACTOR, Actor};

/// The services whose access trail the console verifies.
pub const TRAILS: [&str; 7] = [
    "identity",
    "consent",
    "telemetry",
    "retention",
    "transfers",
    "rights",
    "incidents",
];

/// The clients.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Accounts, sessions, deletion.
    pub identity: IdentityServiceClient<TracedChannel>,
    /// Purposes, consents, contact preferences.
    pub consent: ConsentServiceClient<TracedChannel>,
    /// The person's own data-subject requests; the console's queue.
    pub rights: RightsServiceClient<TracedChannel>,
    /// The console's transfers register.
    pub transfers: TransfersServiceClient<TracedChannel>,
    /// The console's retention pages.
    pub retention: RetentionServiceClient<TracedChannel>,
    /// The console's overdue page: breaches' authority deadlines.
    pub incidents: IncidentsServiceClient<TracedChannel>,
    /// The console's overdue page: impact assessments' reviews.
    pub assessments: AssessmentsServiceClient<TracedChannel>,
    /// Each service's access trail, by service name (those `[services]` names).
    pub trails: Vec<(&'static str, AuditServiceClient<TracedChannel>)>,
}

impl Mesh {
    /// Channels to the services `[services]` names, as the web caller.
    pub fn connect(ctx: &ServiceContext) -> anyhow::Result<Self> {
        let mut trails = Vec::new();
        for name in TRAILS {
            match ctx.channel(name) {
                Ok(channel) => trails.push((name, AuditServiceClient::new(channel))),
                Err(err) => tracing::warn!(service = name, error = %err, "no trail to verify"),
            }
        }
        Ok(Self {
            identity: IdentityServiceClient::new(ctx.channel("identity")?),
            consent: ConsentServiceClient::new(ctx.channel("consent")?),
            rights: RightsServiceClient::new(ctx.channel("rights")?),
            transfers: TransfersServiceClient::new(ctx.channel("transfers")?),
            retention: RetentionServiceClient::new(ctx.channel("retention")?),
            incidents: IncidentsServiceClient::new(ctx.channel("incidents")?),
            assessments: AssessmentsServiceClient::new(ctx.channel("incidents")?),
            trails,
        })
    }
}

/// A call made for `operator` of the privacy team: the mesh records it under their name
/// (`x-pdm-actor: operator:<name>`, believed from the web front only).
pub fn acting<T>(operator: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = Actor::header_value(operator).parse() {
        request.metadata_mut().insert(ACTOR, value);
    }
    request
}
