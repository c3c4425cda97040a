//! Who may see a request (policy: only the person, or whom they asked, gets their data):
//! the privacy team; the caller that submitted it; a caller presenting the subject's live
//! session. Anyone else hears `NOT_FOUND`, as for a request that does not exist.
//!
//! The package of a completed access or portability request also needs its one-time
//! download token: given once, to the first of those callers (never the privacy team)
//! that looks at the request after it completed; only its SHA-256 is kept, and a complete
//! download uses it up. The privacy team downloads without one.

use pdm_proto::{
    identity::v1::ValidateSessionRequest,
    rights::v1::{self as pb, RequestKind, Status},
};
use pdm_tls::identity::Caller;

use super::RightsApi;
use crate::{
    error::{Result, RightsError},
    store::entities::request,
};

/// Length of a download token, in random bytes.
const TOKEN_BYTES: usize = 32;

/// Who is looking at a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The privacy team.
    Admin,
    /// The caller that submitted it, or one holding the subject's session.
    Owner,
    /// No caller identity (plaintext mode without a sidecar): nothing to check against.
    Anonymous,
}

impl RightsApi {
    /// Who `caller` is to the request `row`, or `NOT_FOUND` when they may not see it.
    pub(super) async fn viewer(
        &self,
        caller: Option<&Caller>,
        row: &request::Model,
        session_token: &str,
    ) -> Result<Viewer> {
        let Some(caller) = caller else {
            return Ok(Viewer::Anonymous);
        };
        if *caller == Caller::Admin {
            return Ok(Viewer::Admin);
        }
        let access = self.store.access(&row.request_id).await?;
        if access
            .as_ref()
            .and_then(|a| a.submitted_by.as_deref())
            .is_some_and(|by| by == caller.to_string())
        {
            return Ok(Viewer::Owner);
        }
        if !session_token.is_empty()
            && let Some(subject) = &row.subject_id
            && self.session_subject(session_token).await.as_ref() == Some(subject)
        {
            return Ok(Viewer::Owner);
        }
        tracing::info!(caller = %caller, "a request asked for by a caller it is not for");
        Err(RightsError::NotFound)
    }

    /// The subject a session belongs to, per identity.
    async fn session_subject(&self, token: &str) -> Option<String> {
        self.peers
            .identity
            .clone()
            .validate_session(ValidateSessionRequest {
                session_token: token.to_owned(),
            })
            .await
            .ok()
            .map(|r| r.into_inner().subject_id)
            .filter(|s| !s.is_empty())
    }

    /// The request as `viewer` sees it: with its download token the first time an owner
    /// sees it completed.
    pub(super) async fn load_for(
        &self,
        id: &str,
        viewer: &Viewer,
    ) -> Result<pb::DataSubjectRequest> {
        let mut request = self.load(id).await?;
        if *viewer == Viewer::Owner && has_package(&request) {
            let token = pdm_crypto::random_token(TOKEN_BYTES)
                .map_err(|_| RightsError::Internal("token generation failed"))?;
            if self
                .store
                .issue_download_token(id, pdm_crypto::sha256(token.as_bytes()))
                .await?
            {
                request.download_token = token;
            }
        }
        Ok(request)
    }

    /// Checks the download token of a download by `viewer`; its hash when one is needed.
    pub(super) async fn check_download_token(
        &self,
        id: &str,
        viewer: &Viewer,
        token: &str,
    ) -> Result<Option<Vec<u8>>> {
        if *viewer != Viewer::Owner {
            return Ok(None);
        }
        let hash = pdm_crypto::sha256(token.as_bytes());
        let valid = !token.is_empty()
            && self.store.access(id).await?.is_some_and(|a| {
                a.download_token_used_at.is_none()
                    && a.download_token_hash.as_deref() == Some(hash.as_slice())
            });
        if !valid {
            return Err(RightsError::Invalid(pdm_runtime::error::invalid_field(
                "download_token",
                "required: the one-time token GetRequest gave when the request completed",
            )));
        }
        Ok(Some(hash))
    }
}

/// Whether the request is a completed one with a package.
fn has_package(request: &pb::DataSubjectRequest) -> bool {
    request.status == Status::Completed as i32
        && matches!(
            RequestKind::try_from(request.kind),
            Ok(RequestKind::Access | RequestKind::Portability | RequestKind::CcpaKnow)
        )
        && request.package_expires_at.is_some()
}
