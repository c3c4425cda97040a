//! The gRPC edge.

mod access;
mod children;
mod concerns;
mod convert;
mod download;
mod notices;
pub mod requests;
mod rights;

use std::sync::Arc;

use pdm_proto::{
    identity::v1::{ValidateSessionRequest, VerifySubjectRequest, verify_subject_request},
    rights::v1::{RequestKind, credential::Credential},
};
use pdm_runtime::{SharedClock, SubjectId};
use pdm_tls::identity::{Caller, ON_BEHALF_OF};
use tokio::sync::{Notify, broadcast};

use crate::{
    domain::plan::{Planned, plan},
    outbox::Outbox,
    peers::Peers,
    settings::RightsSettings,
    store::{Store, entities::task},
};

/// The rights service's gRPC handlers.
#[derive(Debug, Clone)]
pub struct RightsApi {
    store: Store,
    peers: Peers,
    clock: SharedClock,
    settings: RightsSettings,
    wake: Arc<Notify>,
    changes: broadcast::Sender<String>,
    outbox: Outbox,
    /// The DPO named in notices and access packages (`[incidents.dpo]`).
    dpo: Arc<pdm_runtime::dpo::Dpo>,
}

impl RightsApi {
    /// Handlers sharing the worker's parts.
    pub fn new(worker: &crate::worker::Worker) -> Self {
        Self {
            store: worker.store.clone(),
            peers: worker.peers.clone(),
            clock: worker.clock.clone(),
            settings: worker.settings.clone(),
            wake: worker.wake.clone(),
            changes: worker.changes.clone(),
            outbox: worker.outbox.clone(),
            dpo: Arc::new(pdm_runtime::dpo::Dpo::default()),
        }
    }

    /// The same, naming `dpo` as the Data Protection Officer.
    pub fn with_dpo(mut self, dpo: pdm_runtime::dpo::Dpo) -> Self {
        self.dpo = Arc::new(dpo);
        self
    }

    /// Checks a credential with identity; `None` when it does not prove the subject (the
    /// same answer whether or not an account exists). Identity answers with the ids it
    /// issued, so the subject proved is a [`SubjectId`].
    async fn verify(
        &self,
        claimed: Option<&str>,
        credential: Option<&Credential>,
        caller: Option<&Caller>,
    ) -> Option<SubjectId> {
        let mut identity = self.peers.identity.clone();
        let result = match credential? {
            Credential::SessionToken(token) => identity
                .validate_session(ValidateSessionRequest {
                    session_token: token.clone(),
                })
                .await
                .map(|r| r.into_inner().subject_id)
                .ok()
                .filter(|s| claimed.is_none_or(|c| c == s)),
            Credential::Password(password) => {
                let subject = claimed?.to_owned();
                let mut request = tonic::Request::new(VerifySubjectRequest {
                    subject_id: subject.clone(),
                    credential: Some(verify_subject_request::Credential::Password(
                        password.clone(),
                    )),
                });
                // Identity throttles wrong passwords per (subject, client): name the client
                // this check is for, so one client's failures lock out only that client.
                let party = caller.map_or_else(|| "anonymous".to_owned(), ToString::to_string);
                if let Ok(value) = party.parse() {
                    request.metadata_mut().insert(ON_BEHALF_OF, value);
                }
                identity.verify_subject(request).await.ok().map(|_| subject)
            }
            // The privacy team checked the subject out of band and quotes its reference.
            Credential::OperatorReference(_) => claimed.map(str::to_owned),
        }
        .and_then(|s| s.parse::<SubjectId>().ok());
        if result.is_none() {
            tracing::info!("credential did not verify the subject");
        }
        result
    }

    /// The subject's email, for the messages the request owes them: none when identity
    /// knows no address; UNAVAILABLE when identity does not answer, so a request is never
    /// stored without the address it has (it would close untold: Account deletion, step 5,
    /// "You will receive an email confirming the deletion").
    async fn contact_email(&self, subject: &SubjectId) -> crate::error::Result<Option<String>> {
        self.peers
            .account_email(&subject.to_string())
            .await
            .map_err(|_| crate::error::RightsError::Unavailable("identity"))
    }

    fn tasks(
        &self,
        request_id: &str,
        kind: RequestKind,
        priority: i32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<task::Model> {
        plan(
            kind,
            &self.settings.data_services(),
            self.settings.retention,
        )
        .into_iter()
        .map(|Planned { service, action }| {
            task::Model::pending(request_id, service, action.name(), priority, now)
        })
        .collect()
    }
}

/// Only the privacy team vouches for a subject with an `operator_reference`: from anyone
/// else it would let a caller verify any subject it names. Without TLS there is no caller
/// identity (and no authorisation at all), so nothing is checked.
pub(super) fn check_vouching(
    caller: Option<&Caller>,
    credential: Option<&Credential>,
) -> Result<(), crate::error::RightsError> {
    if let (Some(Credential::OperatorReference(_)), Some(caller)) = (credential, caller)
        && *caller != Caller::Admin
    {
        tracing::warn!(caller = %caller, "operator reference refused: not the privacy team");
        return Err(crate::error::RightsError::Forbidden(format!(
            "{caller} may not vouch for a subject: operator_reference is for the privacy team (admin)"
        )));
    }
    Ok(())
}
