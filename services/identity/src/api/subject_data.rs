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

/// Subject ids one `ListSubjectsHeld` call answers at most, by default, and per message.
const HELD_MAX: u32 = 10_000;
const HELD_DEFAULT: u32 = 1000;
const HELD_BATCH: usize = 500;

type HeldStream = Pin<Box<dyn Stream<Item = Result<pb::ListSubjectsHeldResponse, Status>> + Send>>;

/// The table and the column saying since when a row is held, per category this service
/// holds subjects by (`ListSubjectsHeld`); other categories answer nothing.
fn held_table(category: &str) -> Option<(&'static str, &'static str)> {
    match category {
        "account.profile" => Some(("accounts", "created_at")),
        "account.credentials" => Some(("accounts", "created_at")),
        "account.session" => Some(("sessions", "created_at")),
        "billing.record" => Some(("billing_contacts", "updated_at")),
        "support.ticket" => Some(("support_tickets", "created_at")),
        _ => None,
    }
}

/// A checked `ListSubjectsHeldRequest`.
struct Held {
    incident_id: String,
    category: String,
    end: chrono::DateTime<chrono::Utc>,
    after: String,
    limit: u64,
}

/// Checks a `ListSubjectsHeldRequest`, a field violation per bad field.
fn held_request(r: &pb::ListSubjectsHeldRequest) -> Result<Held, Status> {
    let mut v = pdm_runtime::FieldViolations::new();
    v.check(
        "incident_id",
        pdm_runtime::ids::check_request_id(&r.incident_id),
    );
    if r.category.is_empty() {
        v.add("category", "required");
    } else if r.category.len() > 128
        || !r.category.starts_with(|c: char| c.is_ascii_lowercase())
        || !r
            .category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
    {
        v.add(
            "category",
            "a category key: at most 128 lower-case letters, '.' or '_'",
        );
    }
    let mut time = |field: &str, ts: Option<&prost_types::Timestamp>| match ts {
        None => {
            v.add(field, "required");
            None
        }
        Some(ts) => {
            let t = pdm_runtime::convert::from_timestamp(ts);
            if t.is_none() {
                v.add(field, "not a valid time");
            }
            t
        }
    };
    let start = time("window_start", r.window_start.as_ref());
    let end = time("window_end", r.window_end.as_ref());
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        v.add("window_end", "must be after window_start");
    }
    if !r.after_subject_id.is_empty() {
        v.check(
            "after_subject_id",
            r.after_subject_id.parse::<pdm_runtime::SubjectId>(),
        );
    }
    if r.page_size > HELD_MAX {
        v.add("page_size", "at most 10000");
    }
    v.finish()?;
    let end = end.ok_or_else(|| Status::internal("validated window missing"))?;
    let page = if r.page_size == 0 {
        HELD_DEFAULT
    } else {
        r.page_size
    };
    Ok(Held {
        incident_id: r.incident_id.clone(),
        category: r.category.clone(),
        end,
        after: r.after_subject_id.clone(),
        limit: u64::from(page),
    })
}

#[tonic::async_trait]
impl SubjectDataService for IdentityApi {
    type ListSubjectsHeldStream = HeldStream;

    async fn list_subjects_held(
        &self,
        request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        let held = held_request(request.get_ref())?;
        let ids = match held_table(&held.category) {
            Some((table, since)) => {
                self.store
                    .subjects_held(table, since, held.end, &held.after, held.limit)
                    .await?
            }
            None => Vec::new(),
        };
        tracing::info!(incident_id = %held.incident_id, category = %held.category, count = ids.len(), "subjects held listed");
        let batches: Vec<Result<pb::ListSubjectsHeldResponse, Status>> = ids
            .chunks(HELD_BATCH)
            .map(|c| {
                Ok(pb::ListSubjectsHeldResponse {
                    subject_ids: c.to_vec(),
                })
            })
            .collect();
        let mut response = Response::new(Box::pin(tokio_stream::iter(batches)) as HeldStream);
        if !ids.is_empty() {
            // One access-trail entry per subject listed, the incident as its purpose.
            response.extensions_mut().insert(audit::Accessed {
                subjects: ids,
                purpose: held.incident_id,
            });
        }
        Ok(response)
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
