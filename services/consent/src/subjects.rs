//! Resolving a subject to its current state: the cache first; on a miss, the region
//! (remembered, else asked of identity) and the subject's ledger folded in order.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pdm_crypto::Keyring;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{Channel, LedgerEntryKind},
    identity::v1::{GetRegionRequest, identity_service_client::IdentityServiceClient},
};
use pdm_runtime::{SubjectId, client::TracedChannel};
use tonic::Code;

use crate::{
    cache::{DecisionCache, Known},
    domain::{catalogue::Catalogue, event::Change, state::SubjectState},
    error::{ConsentError, Result},
    store::{Row, Store},
};

/// Prefix of the pseudonym that replaces an erased subject's id in the ledger.
pub const ERASED_PREFIX: &str = "erased:";

/// Finds subjects' states.
#[derive(Debug, Clone)]
pub struct Subjects {
    store: Store,
    cache: Arc<DecisionCache>,
    catalogue: Arc<Catalogue>,
    identity: Option<IdentityServiceClient<TracedChannel>>,
    keyring: Keyring,
    region_ttl: Duration,
}

impl Subjects {
    /// A resolver. Without an identity client, only remembered regions are known.
    pub fn new(
        store: Store,
        cache: Arc<DecisionCache>,
        catalogue: Arc<Catalogue>,
        identity: Option<IdentityServiceClient<TracedChannel>>,
        keyring: Keyring,
        region_ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            catalogue,
            identity,
            keyring,
            region_ttl,
        }
    }

    /// The cache.
    pub fn cache(&self) -> &DecisionCache {
        &self.cache
    }

    /// The pseudonym that replaces `subject` in the ledger after erasure.
    pub fn pseudonym(&self, subject: &SubjectId) -> String {
        let index = self
            .keyring
            .blind_index()
            .compute("consent-subject", &subject.to_string());
        let hex: String = index.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{ERASED_PREFIX}{hex}")
    }

    /// The subject's state, from the cache or loaded.
    pub async fn resolve(&self, subject: &SubjectId, now: DateTime<Utc>) -> Result<Known> {
        if let Some(known) = self.cache.get(subject.as_uuid(), now) {
            return Ok(known);
        }
        loop {
            let mark = self.cache.load_mark(subject.as_uuid());
            let known = self.load(subject, now).await?;
            if self
                .cache
                .insert_loaded(*subject.as_uuid(), known, now, mark)
            {
                return Ok(known);
            }
        }
    }

    /// Loads the subject's state from the database (and identity), bypassing the cache.
    pub async fn load(&self, subject: &SubjectId, now: DateTime<Utc>) -> Result<Known> {
        let rows = self
            .store
            .ledger_of(subject, &self.pseudonym(subject))
            .await?;
        if rows
            .iter()
            .any(|r| r.kind == LedgerEntryKind::Erased.as_str_name())
        {
            return Ok(Known::Unknown);
        }
        let Some(region) = self.region(subject, now).await? else {
            return Ok(Known::Unknown);
        };
        Ok(Known::Subject(fold(&self.catalogue, region, &rows)))
    }

    async fn region(&self, subject: &SubjectId, now: DateTime<Utc>) -> Result<Option<Region>> {
        let remembered = self.store.region(subject).await?;
        if let Some((region, checked_at)) = remembered
            && checked_at + self.region_ttl > now
        {
            return Ok(Some(region));
        }
        let Some(identity) = &self.identity else {
            return Ok(remembered.map(|(r, _)| r));
        };
        let answer = identity
            .clone()
            .get_region(GetRegionRequest {
                subject_id: subject.to_string(),
            })
            .await;
        match answer {
            Ok(response) => {
                let region =
                    Region::try_from(response.into_inner().region).unwrap_or(Region::Other);
                self.store.save_region(subject, region, now).await?;
                Ok(Some(region))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => {
                // Identity is down: a remembered region, even old, beats failing.
                if let Some((region, _)) = remembered {
                    tracing::warn!(code = ?status.code(), "identity unavailable: using the remembered region");
                    return Ok(Some(region));
                }
                tracing::warn!(code = ?status.code(), "identity unavailable: subject cannot be resolved");
                Err(ConsentError::IdentityUnavailable)
            }
        }
    }
}

/// Folds ledger rows, oldest first, into a state.
pub fn fold(catalogue: &Catalogue, region: Region, rows: &[Row]) -> SubjectState {
    let mut state = SubjectState::new(region);
    for row in rows {
        state.apply(&change(catalogue, row));
    }
    state
}

/// A row as the projection sees it. A grant that does not give consent to its purpose (a
/// plain grant of a special category: see [`Purpose::consented_by`]) changes nothing,
/// like an entry for a purpose no longer in the catalogue.
///
/// [`Purpose::consented_by`]: crate::domain::catalogue::Purpose::consented_by
pub fn change(catalogue: &Catalogue, row: &Row) -> Change {
    let kind = LedgerEntryKind::from_str_name(&row.kind).unwrap_or(LedgerEntryKind::Unspecified);
    let is_grant = matches!(
        kind,
        LedgerEntryKind::Grant | LedgerEntryKind::ExplicitGrant
    );
    Change {
        kind,
        purpose: row
            .purpose
            .as_deref()
            .and_then(|p| catalogue.find(p))
            .filter(|i| !is_grant || catalogue.get(*i).consented_by(kind)),
        channel: row
            .channel
            .as_deref()
            .and_then(Channel::from_str_name)
            .unwrap_or(Channel::Unspecified),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn row(kind: LedgerEntryKind, purpose: &str) -> Row {
        Row {
            seq: 1,
            subject_id: Uuid::now_v7().to_string(),
            kind: kind.as_str_name().to_owned(),
            purpose: Some(purpose.to_owned()),
            channel: None,
            source: "SOURCE_WEB_FORM".to_owned(),
            policy_version: None,
            text_hash: None,
            actor: None,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn we_always_ask_for_your_permission_only_an_explicit_grant_opens_a_special_category() {
        // Policy, "Consent to be obtained": a plain grant of a special category (none can
        // be written, but the ledger is read as it is) gives no consent; an explicit one
        // does, and a withdrawal ends it.
        let catalogue = Catalogue::new(&[]).unwrap_or_else(|e| panic!("{e}"));
        let health = catalogue
            .find("special_category_health")
            .unwrap_or_else(|| panic!("health"));
        let plain = fold(
            &catalogue,
            Region::Uk,
            &[row(LedgerEntryKind::Grant, "special_category_health")],
        );
        assert!(!plain.granted(health));
        let explicit = fold(
            &catalogue,
            Region::Uk,
            &[row(
                LedgerEntryKind::ExplicitGrant,
                "special_category_health",
            )],
        );
        assert!(explicit.granted(health));
        let withdrawn = fold(
            &catalogue,
            Region::Uk,
            &[
                row(LedgerEntryKind::ExplicitGrant, "special_category_health"),
                row(LedgerEntryKind::Withdraw, "special_category_health"),
            ],
        );
        assert!(!withdrawn.granted(health) && withdrawn.withdrawn(health));
        // Ordinary purposes take either kind of grant.
        let analytics = catalogue
            .find("product_analytics")
            .unwrap_or_else(|| panic!("analytics"));
        let state = fold(
            &catalogue,
            Region::Eea,
            &[row(LedgerEntryKind::Grant, "product_analytics")],
        );
        assert!(state.granted(analytics));
    }
}
