//! Who is affected: `FindAffected` asks each data service which subjects it held data of
//! the incident's categories for within its window and records them (ids only);
//! `ListAffected` pages through them, with where they live (`regions`). Logs say counts,
//! never ids.

use std::collections::{BTreeMap, BTreeSet};

use pdm_proto::{
    incidents::v1 as pb,
    subject::v1::{ListSubjectsHeldRequest, ListSubjectsHeldResponse},
};
use pdm_runtime::convert::timestamp;
use tonic::Streaming;

use super::{IncidentsApi, notify, requests};
use crate::{
    domain::{notice::Status, region},
    error::{IncidentsError, Result},
};

/// Subject ids asked for per `ListSubjectsHeld` call.
const PAGE: u32 = 1000;

impl IncidentsApi {
    /// The services to ask for an incident naming `named` (all configured when empty).
    fn asked(&self, named: &[String]) -> Vec<String> {
        self.peers
            .keys()
            .filter(|name| named.is_empty() || named.contains(name))
            .cloned()
            .collect()
    }

    pub(super) async fn search_affected(
        &self,
        req: pb::FindAffectedRequest,
    ) -> Result<pb::FindAffectedResponse> {
        let id = Self::id("incident_id", &req.incident_id)?;
        let stored = self.found(&id).await?;
        let details = &stored.details;
        let end = details.window_end.unwrap_or_else(|| self.clock.now());
        let services = self.asked(&details.services);
        let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if end > details.window_start {
            for service in &services {
                let Some(client) = self.peers.get(service) else {
                    continue;
                };
                for category in &details.data_categories {
                    let mut after = String::new();
                    loop {
                        let request = ListSubjectsHeldRequest {
                            incident_id: id.clone(),
                            category: category.clone(),
                            window_start: Some(timestamp(details.window_start)),
                            window_end: Some(timestamp(end)),
                            after_subject_id: after.clone(),
                            page_size: PAGE,
                        };
                        let stream = client
                            .clone()
                            .list_subjects_held(request)
                            .await
                            .map_err(|s| unavailable(service, &s))?
                            .into_inner();
                        let ids = collect(stream)
                            .await
                            .map_err(|s| unavailable(service, &s))?;
                        let full = ids.len() >= PAGE as usize;
                        if let Some(last) = ids.last() {
                            after = last.clone();
                        }
                        for subject in ids {
                            found.entry(subject).or_default().insert(service.clone());
                        }
                        if !full {
                            break;
                        }
                    }
                }
            }
        }
        let added = self
            .store
            .record_affected(&id, &found, self.clock.now())
            .await?;
        // Regions after the record: what identity could not answer stays missing, not wrong.
        let regions_asked = self.fill_regions(&id).await?;
        let affected = self.store.affected_count(&id).await?;
        let by_region = self.region_counts(&id).await?;
        tracing::info!(incident_id = %id, services = services.len(), found = found.len(), added, affected, regions_asked, "affected subjects searched");
        Ok(pb::FindAffectedResponse {
            affected,
            added,
            services,
            by_region,
        })
    }

    pub(super) async fn page_affected(
        &self,
        req: pb::ListAffectedRequest,
    ) -> Result<pb::ListAffectedResponse> {
        let mut check = requests::Check::default();
        let id = check.incident_id("incident_id", &req.incident_id);
        if !(0..=requests::MAX_PAGE).contains(&req.page_size) {
            check.add("page_size", format!("from 0 to {}", requests::MAX_PAGE));
        }
        if !req.page_token.is_empty() && req.page_token.parse::<uuid::Uuid>().is_err() {
            check.add("page_token", "a token from a previous answer");
        }
        check.finish()?;
        let id = id.ok_or(IncidentsError::Internal("validated request incomplete"))?;
        self.found(&id).await?;
        let limit = match u64::try_from(req.page_size) {
            Ok(0) | Err(_) => requests::DEFAULT_PAGE,
            Ok(n) => n,
        };
        let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let mut rows = self.store.affected(&id, after, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = if more {
            rows.last()
                .map(|r| r.subject_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let current = self.current_notices(&id, &rows).await;
        let total = self.store.affected_count(&id).await?;
        let by_region = self.region_counts(&id).await?;
        Ok(pb::ListAffectedResponse {
            total,
            by_region,
            subjects: rows
                .into_iter()
                .map(|r| {
                    let status = current
                        .get(&r.subject_id)
                        .copied()
                        .or_else(|| r.notice_status.as_deref().and_then(Status::parse));
                    pb::AffectedSubject {
                        notice_status: notify::status_pb(r.notified_at.and(status)) as i32,
                        notice_id: r.notice_id.unwrap_or_default(),
                        notified_at: r.notified_at.map(timestamp),
                        subject_id: r.subject_id,
                        services: r
                            .services
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        found_at: Some(timestamp(r.found_at)),
                        region: region::parse(r.region.as_deref()) as i32,
                    }
                })
                .collect(),
            next_page_token,
        })
    }

    /// Where the notices of the told subjects of `rows` stand now, as rights says; empty
    /// when rights does not answer (the statuses recorded are shown then).
    async fn current_notices(
        &self,
        incident_id: &str,
        rows: &[crate::store::entities::affected_subject::Model],
    ) -> BTreeMap<String, Status> {
        let told: Vec<String> = rows
            .iter()
            .filter(|r| r.notified_at.is_some())
            .map(|r| r.subject_id.clone())
            .collect();
        let Some(rights) = self.rights.clone().filter(|_| !told.is_empty()) else {
            return BTreeMap::new();
        };
        match rights
            .clone()
            .list_notices(pdm_proto::rights::v1::ListNoticesRequest {
                incident_id: incident_id.to_owned(),
                subject_ids: told,
            })
            .await
        {
            Ok(answer) => answer
                .into_inner()
                .notices
                .iter()
                .filter_map(|n| Some((n.subject_id.clone(), notify::status_of(n)?)))
                .collect(),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "rights did not answer: notice statuses as last recorded");
                BTreeMap::new()
            }
        }
    }
}

async fn collect(
    mut stream: Streaming<ListSubjectsHeldResponse>,
) -> std::result::Result<Vec<String>, tonic::Status> {
    let mut ids = Vec::new();
    while let Some(batch) = stream.message().await? {
        ids.extend(batch.subject_ids);
    }
    Ok(ids)
}

/// A data service that did not answer: the search is to be run again.
fn unavailable(service: &str, status: &tonic::Status) -> IncidentsError {
    tracing::warn!(service, code = ?status.code(), "a data service did not answer the affected search");
    IncidentsError::Invalid(tonic::Status::unavailable(format!(
        "{service} did not answer; run FindAffected again"
    )))
}
