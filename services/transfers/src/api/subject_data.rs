//! `pdm.subject.v1.SubjectDataService` for the transfers service: the subject's transfer
//! log entries and recipients; erasure pseudonymises the log (a legal record).

use pdm_access_trail as audit;
use pdm_runtime::erasure::{self, KeptRecord};
use std::pin::Pin;

use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{self as pb, subject_data_service_server::SubjectDataService},
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::{from_timestamp, json_to_struct},
    ids::check_request_id,
};
use serde_json::json;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{TransfersApi, convert, requests::checked};
use crate::{
    domain::legal_order,
    error::{Result, TransfersError},
    store::LogFilter,
};

const SERVICE: &str = "transfers";
/// Category of transfer log entries.
pub const LOG: &str = "transfers.log";

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportSubjectResponse, Status>> + Send>>;

impl TransfersApi {
    async fn export(&self, subject: &SubjectId) -> Result<Vec<pb::SubjectRecord>> {
        let mut records = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .store
                .log_page(&LogFilter {
                    subject_id: Some(*subject),
                    before: before.clone(),
                    limit: 1000,
                    ..LogFilter::default()
                })
                .await?;
            let done = page.len() < 1000;
            before = page.last().map(|r| r.log_id.clone());
            let now = self.clock.now();
            for row in page {
                if legal_order::withheld(row.secret_until, now) {
                    // A gagging order: the law forbids telling the subject, for now.
                    continue;
                }
                let e = convert::log_entry(row);
                let d = e.decision.clone().unwrap_or_default();
                records.push(pb::SubjectRecord {
                    service: SERVICE.to_owned(),
                    category: LOG.to_owned(),
                    record_id: e.log_id.clone(),
                    purposes: vec![e.purpose.clone()],
                    legal_basis: LegalBasis::LegalObligation as i32,
                    source: "recorded when a transfer of the subject's data was decided".to_owned(),
                    retention: Some(pb::Retention {
                        rule: "kept as a record of processing; pseudonymised on erasure; purged as the retention policy for transfer records says".to_owned(),
                        delete_after: None,
                    }),
                    recipients: if d.allowed { vec![e.recipient_name.clone()] } else { Vec::new() },
                    data: Some(json_to_struct(json!({
                        "recipient": e.recipient_name,
                        "country": e.country,
                        "regime": pdm_proto::transfers::v1::Regime::try_from(e.regime).unwrap_or_default().as_str_name(),
                        "data_categories": e.data_categories,
                        "allowed": d.allowed,
                        "outcome": pdm_proto::transfers::v1::Outcome::try_from(d.outcome).unwrap_or_default().as_str_name(),
                        "detail": d.detail,
                    }))),
                    attachment: None,
                    created_at: d.decided_at,
                });
            }
            if done {
                break;
            }
        }
        let recipients = self
            .store
            .recipients_of_subject(subject, self.clock.now())
            .await?;
        if !recipients.is_empty() {
            let names: Vec<String> = recipients.iter().map(|r| r.name.clone()).collect();
            records.push(pb::SubjectRecord {
                service: SERVICE.to_owned(),
                category: "transfers.recipients".to_owned(),
                record_id: subject.to_string(),
                purposes: Vec::new(),
                legal_basis: LegalBasis::LegalObligation as i32,
                source: "derived from the transfer log".to_owned(),
                retention: None,
                recipients: names.clone(),
                data: Some(json_to_struct(json!({
                    "recipients": recipients.iter().map(|r| json!({
                        "name": r.name, "country": r.country, "role": r.role,
                    })).collect::<Vec<_>>(),
                }))),
                attachment: None,
                created_at: None,
            });
        }
        Ok(records)
    }

    async fn erase(&self, request_id: &str, subject: &SubjectId) -> Result<pb::ErasureReceipt> {
        let pseudonym = self.pseudonym(subject);
        let receipts = self.store.receipts();
        if let Some(done) = receipts
            .find(request_id, &subject.to_string(), &pseudonym)
            .await?
        {
            return Ok(done);
        }
        let now = self.clock.now();
        match self
            .store
            .pseudonymise(subject, &pseudonym, now, |done| {
                done.receipt(
                    request_id,
                    subject,
                    SERVICE,
                    "transfers.subject_link",
                    KEPT,
                    now,
                )
            })
            .await?
        {
            Some(receipt) => Ok(receipt),
            // The same request finished first, concurrently: its receipt holds.
            None => receipts
                .find(request_id, &subject.to_string(), &pseudonym)
                .await?
                .ok_or(TransfersError::Internal("erasure receipt vanished")),
        }
    }
}

/// What the erasure keeps, and why.
const KEPT: KeptRecord = KeptRecord {
    category: LOG,
    reason: "the record of each transfer is kept (accountability, Art. 5(2) and 30 GDPR) \
                         under a pseudonym instead of the subject id; retention rules decide when it goes",
};

fn subject_id(raw: &str) -> Result<SubjectId> {
    let mut v = FieldViolations::new();
    let id = v.check("subject_id", raw.parse::<SubjectId>());
    v.finish().map_err(TransfersError::Invalid)?;
    checked(id)
}

/// The table and the column saying since when a row is held, per category this service
/// holds subjects by (`ListSubjectsHeld`); other categories answer nothing.
fn held_table(category: &str) -> Option<erasure::held::HeldTable> {
    match category {
        "transfers.log" => Some(("transfer_log", "decided_at")),
        _ => None,
    }
}

#[tonic::async_trait]
impl SubjectDataService for TransfersApi {
    type ListSubjectsHeldStream = erasure::held::HeldStream;

    async fn list_subjects_held(
        &self,
        request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        erasure::held::list_subjects_held(self.store.db(), SERVICE, request.get_ref(), held_table)
            .await
    }

    type ExportSubjectStream = ExportStream;

    async fn export_subject(
        &self,
        request: Request<pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        let subject = subject_id(&request.get_ref().subject_id)?;
        let purpose = request.get_ref().request_id.clone();
        // The request id is kept in the access trail as the access's purpose.
        if !purpose.is_empty() {
            pdm_runtime::ids::check_request_id(&purpose)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        let records = self.export(&subject).await?;
        let stream: ExportStream =
            Box::pin(tokio_stream::iter(records.into_iter().map(|record| {
                Ok(pb::ExportSubjectResponse {
                    record: Some(record),
                })
            })));
        Ok(audit::respond(stream, subject.to_string(), purpose))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        let (request_id, subject) = erasure::erase_request(request.get_ref())?;
        let receipt = self.erase(&request_id, &subject).await?;
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
        // Transfers are authorised per call; restriction is enforced by the consent
        // service's decisions, which callers ask before transferring. Nothing is stored
        // here to restrict.
        let subject = subject_id(&request.get_ref().subject_id)?;
        let purpose = request.get_ref().request_id.clone();
        // The request id is kept in the access trail as the access's purpose.
        if !purpose.is_empty() {
            pdm_runtime::ids::check_request_id(&purpose)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        // Any logged decision, denied ones too, is data held about the subject.
        let known = !self
            .store
            .log_page(&LogFilter {
                subject_id: Some(subject),
                limit: 1,
                ..LogFilter::default()
            })
            .await?
            .is_empty();
        Ok(audit::respond(
            pb::RestrictSubjectResponse {
                restricted: false,
                subject_known: known,
            },
            subject.to_string(),
            purpose,
        ))
    }

    async fn purge_expired(
        &self,
        request: Request<pb::PurgeExpiredRequest>,
    ) -> Result<Response<pb::PurgeExpiredResponse>, Status> {
        let trail = audit::Trail::of(&request);
        let r = request.into_inner();
        let mut v = FieldViolations::new();
        v.check("run_id", check_request_id(&r.run_id));
        let mut cutoff = None;
        for (i, rule) in r.rules.iter().enumerate() {
            if rule.category.is_empty() {
                v.add(format!("rules[{i}].category"), "required");
            }
            match rule.cutoff.as_ref().and_then(from_timestamp) {
                Some(c) if rule.category == LOG => cutoff = Some(c),
                Some(_) => {}
                None => v.add(format!("rules[{i}].cutoff"), "required, a valid time"),
            }
        }
        let (mut held, mut hold_ids, mut blanket) = (Vec::new(), Vec::new(), false);
        for (i, hold) in r.holds.iter().enumerate() {
            if hold.hold_id.is_empty() {
                v.add(format!("holds[{i}].hold_id"), "required");
            }
            if !(hold.category.is_empty() || hold.category == LOG) {
                continue;
            }
            if hold.subject_id.is_empty() {
                blanket = true;
                hold_ids.push(hold.hold_id.clone());
            } else if let Some(s) = v.check(
                &format!("holds[{i}].subject_id"),
                hold.subject_id.parse::<SubjectId>(),
            ) {
                held.push(s.to_string());
                held.push(self.pseudonym(&s));
                hold_ids.push(hold.hold_id.clone());
            }
        }
        v.finish()?;
        // The access trail's own rule (`audit.access`), beside the log's.
        let mut results = Vec::new();
        if let Some((trail, caller)) = trail {
            results.extend(trail.purge(&r, &caller, self.clock.now()).await?);
        }
        let Some(cutoff) = cutoff else {
            return Ok(Response::new(pb::PurgeExpiredResponse { results }));
        };
        let (purged, held_count) = if blanket {
            let (expired, _) = self.store.purge_log(cutoff, &[], true).await?;
            (0, expired)
        } else {
            self.store.purge_log(cutoff, &held, r.dry_run).await?
        };
        tracing::info!(run_id = %r.run_id, purged, held = held_count, dry_run = r.dry_run, "transfer log purge");
        results.insert(
            0,
            pb::PurgeResult {
                category: LOG.to_owned(),
                purged,
                held: held_count,
                hold_ids: if held_count > 0 { hold_ids } else { Vec::new() },
            },
        );
        Ok(Response::new(pb::PurgeExpiredResponse { results }))
    }
}
