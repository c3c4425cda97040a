//! Clients of the services a request reaches, all over traced channels.

use std::collections::BTreeMap;

use pdm_proto::{
    audit::v1::audit_service_client::AuditServiceClient,
    consent::v1::consent_service_client::ConsentServiceClient, identity::v1::GetAccountRequest,
    identity::v1::identity_service_client::IdentityServiceClient,
    retention::v1::retention_service_client::RetentionServiceClient,
    subject::v1::subject_data_service_client::SubjectDataServiceClient,
    transfers::v1::transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{ServiceContext, client::TracedChannel};

/// Every peer of the rights service.
#[derive(Debug, Clone)]
pub struct Peers {
    /// SubjectData of each data-holding service.
    pub subject_data: BTreeMap<String, SubjectDataServiceClient<TracedChannel>>,
    /// The access trail of each data-holding service (for access reports).
    pub audit: BTreeMap<String, AuditServiceClient<TracedChannel>>,
    /// Identity (verification, contact address, rectification).
    pub identity: IdentityServiceClient<TracedChannel>,
    /// Consent (objection, do-not-sell).
    pub consent: ConsentServiceClient<TracedChannel>,
    /// Retention (schedule, account closure).
    pub retention: RetentionServiceClient<TracedChannel>,
    /// Transfers (the register's standing recipients, for access answers).
    pub transfers: TransfersServiceClient<TracedChannel>,
}

impl Peers {
    /// Lazily connected clients for the configured services, as the rights service.
    pub fn new(ctx: &ServiceContext, data_services: &[String]) -> anyhow::Result<Self> {
        let channel = |name: &str| ctx.channel(name);
        let mut subject_data = BTreeMap::new();
        let mut audit = BTreeMap::new();
        for name in data_services {
            let channel = channel(name)?;
            audit.insert(name.clone(), AuditServiceClient::new(channel.clone()));
            subject_data.insert(
                name.clone(),
                SubjectDataServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            );
        }
        Ok(Self {
            subject_data,
            audit,
            identity: IdentityServiceClient::new(channel("identity")?),
            consent: ConsentServiceClient::new(channel("consent")?),
            retention: RetentionServiceClient::new(channel("retention")?),
            transfers: TransfersServiceClient::new(channel("transfers")?),
        })
    }
}

// === impl Peers ===

impl Peers {
    /// The subject's email on their account: `Ok(None)` when identity knows no account of
    /// the subject (or it has no email); `Err` when identity does not answer, so a caller
    /// that records the absence of an address never does so by mistake.
    pub async fn account_email(&self, subject: &str) -> Result<Option<String>, tonic::Status> {
        match self
            .identity
            .clone()
            .get_account(GetAccountRequest {
                subject_id: subject.to_owned(),
            })
            .await
        {
            Ok(answer) => Ok(answer
                .into_inner()
                .account
                .map(|a| a.email)
                .filter(|e| !e.is_empty())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }
}
