//! `pdm.retention.v1.RetentionService`.

use pdm_access_trail as audit;
use std::{collections::HashMap, pin::Pin};

use pdm_proto::retention::v1::{self as pb, retention_service_server::RetentionService};
use pdm_runtime::convert::timestamp;
use tokio_stream::{Stream, StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{RetentionApi, convert, requests};
use crate::{
    MAX_ACTIVE_HOLDS, MAX_POLICIES,
    domain::{
        hold::{HoldScope, holding},
        policy::per_subject,
    },
    error::RetentionError,
    purge::{Progress, ProgressReceiver},
    store::to_policy,
};

type ProgressStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn progress<T: Send + 'static>(
    rx: ProgressReceiver,
    message: fn(Progress) -> T,
) -> ProgressStream<T> {
    Box::pin(ReceiverStream::new(rx).map(move |step| step.map(message).map_err(Status::from)))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn run_message(p: Progress) -> pb::RunPurgeResponse {
    pb::RunPurgeResponse {
        service: p.service.as_ref().map(convert::service_result),
        done: count(p.done),
        total: count(p.total),
        run: Some(convert::run(&p.run)),
    }
}

fn retry_message(p: Progress) -> pb::RetryPurgeResponse {
    pb::RetryPurgeResponse {
        service: p.service.as_ref().map(convert::service_result),
        done: count(p.done),
        total: count(p.total),
        run: Some(convert::run(&p.run)),
    }
}

#[tonic::async_trait]
impl RetentionService for RetentionApi {
    async fn list_policies(
        &self,
        _request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let rows = self.store.policies().await?;
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: rows.into_iter().map(convert::policy).collect(),
        }))
    }

    async fn upsert_policy(
        &self,
        request: Request<pb::UpsertPolicyRequest>,
    ) -> Result<Response<pb::UpsertPolicyResponse>, Status> {
        let requests::PolicyChange { policy, changed_by } =
            requests::parse_upsert_policy(request.get_ref())?;
        let current = self.store.policies().await?;
        if current.len() >= MAX_POLICIES && !current.iter().any(|p| p.category == policy.category) {
            return Err(RetentionError::Limit("at most 1000 policies").into());
        }
        let (stored, changed) = self
            .store
            .upsert_policy(&policy, &changed_by, self.clock.now())
            .await?;
        tracing::info!(
            category = %stored.category,
            version = stored.version,
            changed,
            "policy upserted"
        );
        Ok(Response::new(pb::UpsertPolicyResponse {
            policy: Some(convert::policy(stored)),
        }))
    }

    async fn list_policy_versions(
        &self,
        request: Request<pb::ListPolicyVersionsRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        let category = requests::parse_list_policy_versions(request.get_ref())?;
        let versions = self.store.policy_versions(&category).await?;
        if versions.is_empty() {
            return Err(RetentionError::NotFound("policy").into());
        }
        Ok(Response::new(pb::ListPolicyVersionsResponse {
            versions: versions.into_iter().map(convert::policy).collect(),
        }))
    }

    async fn place_legal_hold(
        &self,
        request: Request<pb::PlaceLegalHoldRequest>,
    ) -> Result<Response<pb::PlaceLegalHoldResponse>, Status> {
        let categories: Vec<String> = self
            .store
            .policies()
            .await?
            .into_iter()
            .map(|p| p.category)
            .collect();
        let row =
            requests::parse_place_legal_hold(request.get_ref(), &categories, self.clock.now())?;
        if self.store.active_hold_count().await? >= MAX_ACTIVE_HOLDS {
            return Err(RetentionError::Limit("at most 1000 active holds").into());
        }
        let stored = self.store.insert_hold(row).await?;
        // The reason and reference are free text and may name people: never logged.
        tracing::info!(
            hold_id = %stored.hold_id,
            subject_id = %stored.subject_id,
            category = %stored.category,
            "legal hold placed"
        );
        Ok(Response::new(pb::PlaceLegalHoldResponse {
            hold: Some(convert::hold(stored)),
        }))
    }

    async fn release_legal_hold(
        &self,
        request: Request<pb::ReleaseLegalHoldRequest>,
    ) -> Result<Response<pb::ReleaseLegalHoldResponse>, Status> {
        let requests::HoldRelease {
            hold_id,
            released_by,
        } = requests::parse_release_legal_hold(request.get_ref())?;
        if self.store.hold(&hold_id).await?.is_none() {
            return Err(RetentionError::NotFound("hold").into());
        }
        self.store
            .release_hold(&hold_id, &released_by, self.clock.now())
            .await?;
        let stored = self
            .store
            .hold(&hold_id)
            .await?
            .ok_or(RetentionError::NotFound("hold"))?;
        tracing::info!(hold_id = %hold_id, "legal hold released");
        Ok(Response::new(pb::ReleaseLegalHoldResponse {
            hold: Some(convert::hold(stored)),
        }))
    }

    async fn list_legal_holds(
        &self,
        request: Request<pb::ListLegalHoldsRequest>,
    ) -> Result<Response<pb::ListLegalHoldsResponse>, Status> {
        let filter = requests::parse_list_legal_holds(request.get_ref())?;
        let rows = self
            .store
            .holds(filter.include_released, filter.subject.as_ref())
            .await?;
        Ok(Response::new(pb::ListLegalHoldsResponse {
            holds: rows.into_iter().map(convert::hold).collect(),
        }))
    }

    async fn record_trigger(
        &self,
        request: Request<pb::RecordTriggerRequest>,
    ) -> Result<Response<pb::RecordTriggerResponse>, Status> {
        let now = self.clock.now();
        let requests::TriggerEvent {
            subject,
            trigger,
            occurred_at: at,
        } = requests::parse_record_trigger(request.get_ref(), now)?;
        let in_force = self
            .store
            .record_trigger(&subject, trigger, at, now)
            .await?;
        tracing::info!(
            subject_id = %subject,
            trigger = trigger.as_str_name(),
            first = in_force == at,
            "trigger recorded"
        );
        Ok(audit::respond(
            pb::RecordTriggerResponse {
                occurred_at: Some(timestamp(in_force)),
            },
            subject.to_string(),
            "",
        ))
    }

    type RunPurgeStream = ProgressStream<pb::RunPurgeResponse>;

    async fn run_purge(
        &self,
        request: Request<pb::RunPurgeRequest>,
    ) -> Result<Response<Self::RunPurgeStream>, Status> {
        let start = requests::parse_run_purge(request.get_ref())?;
        // The console (the web front acting for an operator) starts dry runs only: a real
        // purge deletes data for good and stays with the privacy team's command line, so a
        // compromised web front cannot delete anything through retention.
        if !start.dry_run
            && request
                .extensions()
                .get::<pdm_tls::identity::Actor>()
                .is_some()
        {
            return Err(Status::permission_denied(
                "the console starts dry runs only; run a purge with `pdm retention purge`",
            ));
        }
        let rx = self
            .runner
            .start(start.dry_run, &start.triggered_by)
            .await?;
        Ok(Response::new(progress(rx, run_message)))
    }

    type RetryPurgeStream = ProgressStream<pb::RetryPurgeResponse>;

    async fn retry_purge(
        &self,
        request: Request<pb::RetryPurgeRequest>,
    ) -> Result<Response<Self::RetryPurgeStream>, Status> {
        let run_id = requests::parse_retry_purge(request.get_ref())?;
        let rx = self.runner.retry(&run_id).await?;
        Ok(Response::new(progress(rx, retry_message)))
    }

    async fn get_purge_run(
        &self,
        request: Request<pb::GetPurgeRunRequest>,
    ) -> Result<Response<pb::GetPurgeRunResponse>, Status> {
        let run_id = requests::parse_get_purge_run(request.get_ref())?;
        let run = self
            .store
            .run(&run_id)
            .await?
            .ok_or(RetentionError::NotFound("run"))?;
        Ok(Response::new(pb::GetPurgeRunResponse {
            run: Some(convert::run(&run)),
        }))
    }

    async fn list_purge_runs(
        &self,
        request: Request<pb::ListPurgeRunsRequest>,
    ) -> Result<Response<pb::ListPurgeRunsResponse>, Status> {
        let requests::RunsPage { limit, before } =
            requests::parse_list_purge_runs(request.get_ref())?;
        let runs = self.store.runs(before.as_deref(), limit).await?;
        let full = u64::try_from(runs.len()).unwrap_or(0) == limit;
        let next_page_token = match runs.last() {
            Some(last) if full => last.run.run_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPurgeRunsResponse {
            runs: runs.iter().map(convert::run).collect(),
            next_page_token,
        }))
    }

    async fn get_schedule(
        &self,
        request: Request<pb::GetScheduleRequest>,
    ) -> Result<Response<pb::GetScheduleResponse>, Status> {
        let subject_id = requests::parse_get_schedule(request.get_ref())?;
        // Holds name subjects by the id's text.
        let subject = subject_id.to_string();
        let triggers: HashMap<String, _> = self
            .store
            .triggers(&subject_id)
            .await?
            .into_iter()
            .map(|t| (t.trigger, t.occurred_at))
            .collect();
        let holds: Vec<HoldScope> = self
            .store
            .holds(false, Some(&subject_id))
            .await?
            .into_iter()
            .map(|h| HoldScope {
                hold_id: h.hold_id,
                subject: (!h.subject_id.is_empty()).then_some(h.subject_id),
                category: (!h.category.is_empty()).then_some(h.category),
            })
            .collect();
        let entries = self
            .store
            .policies()
            .await?
            .iter()
            .map(|row| {
                let policy = to_policy(row);
                let triggered_at = per_subject(policy.trigger)
                    .then(|| triggers.get(policy.trigger.as_str_name()).copied())
                    .flatten();
                pb::ScheduleEntry {
                    rule: policy.description.clone(),
                    trigger: policy.trigger as i32,
                    period: Some(convert::period(row)),
                    triggered_at: triggered_at.map(timestamp),
                    delete_after: triggered_at
                        .and_then(|t| policy.delete_after(t))
                        .map(timestamp),
                    hold_ids: holding(&holds, &subject, &policy.category),
                    legal_basis: policy.legal_basis as i32,
                    category: policy.category,
                }
            })
            .collect();
        Ok(audit::respond(
            pb::GetScheduleResponse {
                subject_id: subject.clone(),
                entries,
            },
            subject,
            "",
        ))
    }
}
