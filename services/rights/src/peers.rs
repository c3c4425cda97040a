//! Clients of the services a request reaches, all over traced channels.

use std::{collections::BTreeMap, time::Duration};

use pdm_proto::{
    consent::v1::consent_service_client::ConsentServiceClient,
    identity::v1::identity_service_client::IdentityServiceClient,
    retention::v1::retention_service_client::RetentionServiceClient,
    subject::v1::subject_data_service_client::SubjectDataServiceClient,
};
use pdm_runtime::{
    Settings,
    client::{self, TracedChannel},
};

/// Every peer of the rights service.
#[derive(Debug, Clone)]
pub struct Peers {
    /// SubjectData of each data-holding service.
    pub subject_data: BTreeMap<String, SubjectDataServiceClient<TracedChannel>>,
    /// Identity (verification, contact address, rectification).
    pub identity: IdentityServiceClient<TracedChannel>,
    /// Consent (objection, do-not-sell).
    pub consent: ConsentServiceClient<TracedChannel>,
    /// Retention (schedule, account closure).
    pub retention: RetentionServiceClient<TracedChannel>,
}

impl Peers {
    /// Lazily connected clients for the configured services.
    pub fn new(
        settings: &Settings,
        data_services: &[String],
        call_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let channel = |name: &str| -> anyhow::Result<TracedChannel> {
            client::channel(&settings.endpoint(name)?, call_timeout)
        };
        let mut subject_data = BTreeMap::new();
        for name in data_services {
            subject_data.insert(
                name.clone(),
                SubjectDataServiceClient::new(channel(name)?)
                    .max_decoding_message_size(64 * 1024 * 1024),
            );
        }
        Ok(Self {
            subject_data,
            identity: IdentityServiceClient::new(channel("identity")?),
            consent: ConsentServiceClient::new(channel("consent")?),
            retention: RetentionServiceClient::new(channel("retention")?),
        })
    }
}
