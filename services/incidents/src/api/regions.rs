//! The affected people's regions (issue 21): `FindAffected` asks identity's `GetRegion`
//! for each recorded subject whose region is not recorded yet, a few at a time, and
//! records each answer as it comes, so a run cut short by identity leaves only regions
//! still missing, which the next run asks for. Ids go out, a region comes back: the
//! register copies nobody's data. Logs say counts, never ids.

use futures_util::{StreamExt, stream};
use pdm_proto::{
    common::v1::Region,
    identity::v1::{GetRegionRequest, identity_service_client::IdentityServiceClient},
    incidents::v1 as pb,
};
use pdm_runtime::client::TracedChannel;
use tonic::Code;

use super::IncidentsApi;
use crate::{
    domain::region,
    error::{IncidentsError, Result},
};

/// `GetRegion` calls in flight at once: identity is not flooded by a large breach.
const IN_FLIGHT: usize = 8;

/// Subjects read per round of asking.
const ROUND: u64 = 500;

impl IncidentsApi {
    /// Asks identity the region of every subject of `incident_id` recorded without one;
    /// returns how many were asked. No identity configured: nothing asked.
    pub(super) async fn fill_regions(&self, incident_id: &str) -> Result<u64> {
        let Some(identity) = self.identity.clone() else {
            return Ok(0);
        };
        let mut asked = 0;
        loop {
            let missing = self.store.regions_missing(incident_id, ROUND).await?;
            if missing.is_empty() {
                return Ok(asked);
            }
            let mut answers = stream::iter(missing)
                .map(|subject| {
                    let identity = identity.clone();
                    async move {
                        let region = ask(identity, &subject).await;
                        (subject, region)
                    }
                })
                .buffer_unordered(IN_FLIGHT);
            while let Some((subject, answer)) = answers.next().await {
                let region = answer?;
                self.store
                    .set_region(incident_id, &subject, region.as_str_name())
                    .await?;
                asked += 1;
            }
        }
    }

    /// How many of `incident_id`'s subjects live in each region.
    pub(super) async fn region_counts(&self, incident_id: &str) -> Result<Vec<pb::RegionCount>> {
        let stored = self.store.affected_by_region(incident_id).await?;
        Ok(region::counts(&stored)
            .into_iter()
            .map(|(region, subjects)| pb::RegionCount {
                region: region as i32,
                subjects,
            })
            .collect())
    }
}

/// Attempts per subject: a connection identity dropped (a restart) fails the first call
/// on it with `UNAVAILABLE` while the channel reconnects.
const ATTEMPTS: u32 = 3;

/// `subject`'s region as identity knows it: unknown when identity has no such account
/// (erased, or a subject only another service holds).
async fn ask(identity: IdentityServiceClient<TracedChannel>, subject: &str) -> Result<Region> {
    let mut attempt = 1;
    loop {
        let answer = identity
            .clone()
            .get_region(GetRegionRequest {
                subject_id: subject.to_owned(),
            })
            .await;
        match answer {
            Ok(response) => return Ok(region::answered(response.into_inner().region)),
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                return Ok(Region::Unspecified);
            }
            Err(status) if status.code() == Code::Unavailable && attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "identity did not answer a region");
                return Err(IncidentsError::Invalid(tonic::Status::unavailable(
                    format!(
                        "identity did not answer a region ({:?}); run FindAffected again",
                        status.code()
                    ),
                )));
            }
        }
    }
}
