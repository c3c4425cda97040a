//! `pdm.subject.v1.SubjectDataService` for the identity service.

use std::{collections::HashSet, pin::Pin};

use pdm_access_trail as audit;
use pdm_proto::subject::v1::{
    self as pb, RetentionTrigger, subject_data_service_server::SubjectDataService,
};
use pdm_runtime::{
    FieldViolations, SubjectId, convert::from_timestamp, erasure, ids::check_request_id,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{IdentityApi, convert};
use crate::{
    error::IdentityError,
    store::{Hold, PurgeRule},
};

/// Most purge rules or holds in one request.
const MAX_PURGE_ITEMS: usize = 1000;

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportSubjectResponse, Status>> + Send>>;

/// The table and the column saying since when a row is held, per category this service
/// holds subjects by (`ListSubjectsHeld`); other categories answer nothing.
fn held_table(category: &str) -> Option<erasure::held::HeldTable> {
    match category {
        "account.profile" => Some(("accounts", "created_at")),
        "account.credentials" => Some(("accounts", "created_at")),
        "account.session" => Some(("sessions", "created_at")),
        "billing.record" => Some(("billing_contacts", "updated_at")),
        "support.ticket" => Some(("support_tickets", "created_at")),
        _ => None,
    }
}

#[tonic::async_trait]
impl SubjectDataService for IdentityApi {
    type ListSubjectsHeldStream = erasure::held::HeldStream;

    async fn list_subjects_held(
        &self,
        request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        erasure::held::list_subjects_held(
            self.store.db(),
            crate::NAME,
            request.get_ref(),
            held_table,
        )
        .await
    }

    type ExportSubjectStream = ExportStream;

    async fn export_subject(
        &self,
        request: Request<pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        let subject = super::requests::subject_id(&request.get_ref().subject_id)?;
        let purpose = request.get_ref().request_id.clone();
        // The request id is kept in the access trail as the access's purpose.
        if !purpose.is_empty() {
            pdm_runtime::ids::check_request_id(&purpose)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        let records = self.store.export(&subject).await?;
        let stream = tokio_stream::iter(records.into_iter().map(|r| {
            Ok(pb::ExportSubjectResponse {
                record: Some(convert::record(r)),
            })
        }));
        Ok(audit::respond(
            Box::pin(stream) as ExportStream,
            subject.to_string(),
            purpose,
        ))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        let (request_id, subject) = erasure::erase_request(request.get_ref())?;
        let receipt = self
            .store
            .erase(
                &request_id,
                &subject,
                crate::store::FAN_OUT_REASON,
                self.clock.now(),
            )
            .await?;
        tracing::info!(subject_id = %subject, request_id, "subject erased");
        Ok(audit::respond(
            pb::EraseSubjectResponse {
                receipt: Some(receipt),
            },
            subject.to_string(),
            request_id,
        ))
    }

    async fn restrict_subject(
        &self,
        request: Request<pb::RestrictSubjectRequest>,
    ) -> Result<Response<pb::RestrictSubjectResponse>, Status> {
        let r = request.get_ref();
        let mut v = FieldViolations::new();
        let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
        if !r.request_id.is_empty() {
            v.check("request_id", check_request_id(&r.request_id));
        }
        v.finish()?;
        let subject = subject.ok_or(IdentityError::Internal("validated subject missing"))?;
        let known = self.store.set_restricted(&subject, r.restricted).await?;
        tracing::info!(subject_id = %subject, restricted = r.restricted, known, "restriction set");
        Ok(audit::respond(
            pb::RestrictSubjectResponse {
                restricted: known && r.restricted,
                subject_known: known,
            },
            subject.to_string(),
            r.request_id.clone(),
        ))
    }

    async fn purge_expired(
        &self,
        request: Request<pb::PurgeExpiredRequest>,
    ) -> Result<Response<pb::PurgeExpiredResponse>, Status> {
        let trail = audit::Trail::of(&request);
        let r = request.into_inner();
        let (rules, holds) = purge_request(&r)?;
        let outcomes = self
            .store
            .purge(&rules, &holds, r.dry_run, self.clock.now())
            .await?;
        // The access trail's own rule (`audit.access`), after the records'.
        let trail_result = match trail {
            Some((trail, caller)) => trail.purge(&r, &caller, self.clock.now()).await?,
            None => None,
        };
        for o in &outcomes {
            tracing::info!(run_id = %r.run_id, category = %o.category, purged = o.purged, held = o.held, dry_run = r.dry_run, "purge");
        }
        Ok(Response::new(pb::PurgeExpiredResponse {
            results: outcomes
                .into_iter()
                .map(|o| pb::PurgeResult {
                    category: o.category,
                    purged: o.purged,
                    held: o.held,
                    hold_ids: o.hold_ids,
                })
                .chain(trail_result)
                .collect(),
        }))
    }
}

fn purge_request(r: &pb::PurgeExpiredRequest) -> Result<(Vec<PurgeRule>, Vec<Hold>), Status> {
    let mut v = FieldViolations::new();
    v.check("run_id", check_request_id(&r.run_id));
    if r.rules.len() > MAX_PURGE_ITEMS {
        v.add("rules", "at most 1000 rules");
    }
    if r.holds.len() > MAX_PURGE_ITEMS {
        v.add("holds", "at most 1000 holds");
    }
    let mut rules = Vec::new();
    let mut categories = HashSet::new();
    for (i, rule) in r.rules.iter().enumerate() {
        if rule.category.is_empty() || rule.category.len() > 100 {
            v.add(
                format!("rules[{i}].category"),
                "required, at most 100 characters",
            );
        } else if !categories.insert(rule.category.as_str()) {
            v.add(
                format!("rules[{i}].category"),
                "at most one rule per category",
            );
        }
        let trigger = match RetentionTrigger::try_from(rule.trigger) {
            Ok(RetentionTrigger::Unspecified) | Err(_) => {
                v.add(format!("rules[{i}].trigger"), "required, a known trigger");
                None
            }
            Ok(trigger) => Some(trigger),
        };
        match rule.cutoff.as_ref().and_then(from_timestamp) {
            Some(cutoff) => rules.extend(trigger.map(|trigger| PurgeRule {
                category: rule.category.clone(),
                trigger,
                cutoff,
            })),
            None => v.add(format!("rules[{i}].cutoff"), "required, a valid time"),
        }
    }
    let mut holds = Vec::new();
    for (i, hold) in r.holds.iter().enumerate() {
        if hold.hold_id.is_empty() || hold.hold_id.len() > 128 {
            v.add(
                format!("holds[{i}].hold_id"),
                "required, at most 128 characters",
            );
        }
        let subject = if hold.subject_id.is_empty() {
            None
        } else {
            v.check(
                &format!("holds[{i}].subject_id"),
                hold.subject_id.parse::<SubjectId>(),
            )
        };
        holds.push(Hold {
            hold_id: hold.hold_id.clone(),
            subject,
            category: (!hold.category.is_empty()).then(|| hold.category.clone()),
        });
    }
    v.finish()?;
    Ok((rules, holds))
}
