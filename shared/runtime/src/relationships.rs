//! Per-subject scoping of company clients for services other than identity: a client
//! sees only the subjects it is linked with, and identity keeps the links
//! (`CheckRelationship`). Answers are cached briefly — a positive one for a minute, a
//! negative one for a few seconds so a fresh sign-in or LinkSubject is seen at once —
//! since decisions sit on hot paths.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use pdm_proto::identity::v1::{
    CheckRelationshipRequest, identity_service_client::IdentityServiceClient,
};
use tonic::{Code, Status};

use pdm_tls::identity::Caller;

use crate::client::TracedChannel;

/// How long a link, once seen, is trusted without asking again.
const LINKED_FOR: Duration = Duration::from_secs(60);
/// How long "not linked" is remembered.
const UNLINKED_FOR: Duration = Duration::from_secs(2);
/// Most answers remembered; beyond it the cache starts over.
const MAX_REMEMBERED: usize = 100_000;

/// What a scoping check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The caller may see the subject.
    Allowed,
    /// A company client without a link: answer as for a subject that does not exist.
    Hidden,
}

/// Asks identity whether a client is linked with a subject, remembering answers briefly.
#[derive(Debug)]
pub struct Relationships {
    identity: IdentityServiceClient<TracedChannel>,
    remembered: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

impl Relationships {
    /// A checker asking `identity`.
    pub fn new(identity: IdentityServiceClient<TracedChannel>) -> Self {
        Self {
            identity,
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `caller` may see `subject`: the privacy team and the mesh's services always
    /// (their method rules limit them), a company client when linked, a call without a
    /// caller never. `UNAVAILABLE` when identity cannot answer.
    pub async fn scope(&self, caller: Option<&Caller>, subject: &str) -> Result<Scope, Status> {
        let client = match caller {
            Some(Caller::Admin | Caller::Service(_)) => return Ok(Scope::Allowed),
            Some(client @ Caller::Client(_)) => client.to_string(),
            None => return Ok(Scope::Hidden),
        };
        let key = (client, subject.to_owned());
        let now = Instant::now();
        if let Some(known) = self.recall(&key, now) {
            return Ok(if known { Scope::Allowed } else { Scope::Hidden });
        }
        let answer = self
            .identity
            .clone()
            .check_relationship(CheckRelationshipRequest {
                subject_id: key.1.clone(),
                client: key.0.clone(),
            })
            .await;
        let related = match answer {
            Ok(response) => response.into_inner().related,
            // A subject id identity cannot even read is nobody's.
            Err(status) if status.code() == Code::InvalidArgument => false,
            // Identity is down: a link seen before, even long ago, beats failing (links
            // only go away with the subject's erasure).
            Err(_) if self.seen_linked(&key) => return Ok(Scope::Allowed),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "identity did not answer a relationship check");
                return Err(Status::unavailable(
                    "the identity service cannot confirm the caller's relationship with the subject; retry with backoff",
                ));
            }
        };
        self.remember(key, related, now);
        Ok(if related {
            Scope::Allowed
        } else {
            Scope::Hidden
        })
    }

    fn recall(&self, key: &(String, String), now: Instant) -> Option<bool> {
        let remembered = self.remembered.lock().ok()?;
        let (related, at) = remembered.get(key)?;
        let ttl = if *related { LINKED_FOR } else { UNLINKED_FOR };
        (now.duration_since(*at) < ttl).then_some(*related)
    }

    fn seen_linked(&self, key: &(String, String)) -> bool {
        self.remembered
            .lock()
            .ok()
            .and_then(|remembered| remembered.get(key).map(|(related, _)| *related))
            .unwrap_or(false)
    }

    fn remember(&self, key: (String, String), related: bool, now: Instant) {
        if let Ok(mut remembered) = self.remembered.lock() {
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key, (related, now));
        }
    }
}
