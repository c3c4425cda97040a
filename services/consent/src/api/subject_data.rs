//! `pdm.subject.v1.SubjectDataService` for the consent service.

use std::pin::Pin;

use pdm_access_trail as audit;
use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{LedgerEntryKind, Source},
    subject::v1::{self as pb, subject_data_service_server::SubjectDataService},
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::{from_timestamp, json_to_struct},
    erasure::{self, KeptRecord},
    ids::check_request_id,
};
use serde_json::json;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{ConsentApi, convert, requests::checked};
use crate::{
    cache::Known,
    error::{ConsentError, Result},
    store::NewEntry,
};

const SERVICE: &str = "consent";
/// The category of ledger entries.
pub const RECORD: &str = "consent.record";
/// The category of pseudonymised proof kept after erasure.
pub const PROOF: &str = "consent.proof";

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportSubjectResponse, Status>> + Send>>;

/// What the erasure keeps, and why.
const KEPT: KeptRecord = KeptRecord {
    category: PROOF,
    reason: "pseudonymised proof of consent (purpose, times, policy version, text hash) \
                     kept to demonstrate consent (Art. 7(1) GDPR); the subject id and actor are \
                     gone; retention rules decide when it is purged",
};

fn subject_id(raw: &str) -> Result<SubjectId> {
    let mut v = FieldViolations::new();
    let id = v.check("subject_id", raw.parse::<SubjectId>());
    v.finish().map_err(ConsentError::Invalid)?;
    checked(id)
}

impl ConsentApi {
    async fn erase(&self, request_id: &str, subject: &SubjectId) -> Result<pb::ErasureReceipt> {
        let pseudonym = self.inner.subjects.pseudonym(subject);
        let subject_id = subject.to_string();
        let receipts = self.inner.store.receipts();
        if let Some(done) = receipts.find(request_id, &subject_id, &pseudonym).await? {
            return Ok(done);
        }
        let _writer = self.inner.writer.lock().await;
        let now = self.inner.clock.now();
        let stored = self
            .inner
            .store
            .erase(subject, &pseudonym, now, |done| {
                done.receipt(
                    request_id,
                    subject,
                    SERVICE,
                    "consent.subject_link",
                    KEPT,
                    now,
                )
            })
            .await?;
        self.inner
            .subjects
            .cache()
            .put_written(*subject.as_uuid(), Known::Unknown, now);
        self.inner.ledger.wrote([]);
        match stored {
            Some(receipt) => Ok(receipt),
            // The same request finished first, concurrently: its receipt holds.
            None => receipts
                .find(request_id, &subject_id, &pseudonym)
                .await?
                .ok_or(ConsentError::Internal("erasure receipt vanished")),
        }
    }

    async fn export(&self, subject: &SubjectId) -> Result<Vec<pb::SubjectRecord>> {
        let rows = self.inner.store.history(subject, 0, u64::MAX).await?;
        let known = self
            .inner
            .subjects
            .resolve(subject, self.inner.clock.now())
            .await;
        let mut records = Vec::new();
        if let Ok(Known::Subject(state)) = known {
            let catalogue = &self.inner.catalogue;
            let purposes: Vec<_> = catalogue
                .all()
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let s = convert::purpose_state(p, i, &state);
                    json!({
                        "purpose": p.key,
                        "legal_basis": LegalBasis::try_from(s.legal_basis).unwrap_or_default().as_str_name(),
                        "consent": pdm_proto::consent::v1::ConsentStatus::try_from(s.consent).unwrap_or_default().as_str_name(),
                        "objected": s.objected,
                        "allowed_now": s.decision.is_some_and(|d| d.allowed),
                    })
                })
                .collect();
            records.push(pb::SubjectRecord {
                service: SERVICE.to_owned(),
                category: "consent.state".to_owned(),
                record_id: subject.to_string(),
                purposes: vec!["legal_compliance".to_owned()],
                legal_basis: LegalBasis::LegalObligation as i32,
                source: "derived from the subject's consent ledger".to_owned(),
                retention: Some(pb::Retention {
                    rule: "recomputed from the ledger; nothing stored separately".to_owned(),
                    delete_after: None,
                }),
                recipients: Vec::new(),
                data: Some(json_to_struct(json!({
                    "region": state.region.as_str_name(),
                    "restricted": state.restricted,
                    "do_not_sell": state.do_not_sell,
                    "purposes": purposes,
                }))),
                attachment: None,
                created_at: None,
            });
        }
        for row in rows {
            let e = convert::entry(row);
            records.push(pb::SubjectRecord {
                service: SERVICE.to_owned(),
                category: RECORD.to_owned(),
                record_id: e.sequence.to_string(),
                purposes: vec!["legal_compliance".to_owned()],
                legal_basis: LegalBasis::LegalObligation as i32,
                source: "recorded when the subject (or a service on their behalf) made the choice".to_owned(),
                retention: Some(pb::Retention {
                    rule: "kept as proof while the account exists; pseudonymised on erasure and then kept \
                           as the retention policy for consent records says"
                        .to_owned(),
                    delete_after: None,
                }),
                recipients: Vec::new(),
                data: Some(json_to_struct(json!({
                    "kind": LedgerEntryKind::try_from(e.kind).unwrap_or_default().as_str_name(),
                    "purpose": e.purpose,
                    "channel": pdm_proto::consent::v1::Channel::try_from(e.channel).unwrap_or_default().as_str_name(),
                    "source": Source::try_from(e.source).unwrap_or_default().as_str_name(),
                    "policy_version": e.policy_version,
                    "text_hash": e.text_hash,
                    "actor": e.actor,
                }))),
                attachment: None,
                created_at: e.recorded_at,
            });
        }
        Ok(records)
    }
}

/// The table and the column saying since when a row is held, per category this service
/// holds subjects by (`ListSubjectsHeld`); other categories answer nothing.
fn held_table(category: &str) -> Option<erasure::held::HeldTable> {
    match category {
        "consent.record" => Some(("consent_events", "recorded_at")),
        _ => None,
    }
}

#[tonic::async_trait]
impl SubjectDataService for ConsentApi {
    type ListSubjectsHeldStream = erasure::held::HeldStream;

    async fn list_subjects_held(
        &self,
        request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        erasure::held::list_subjects_held(
            self.inner.store.db(),
            SERVICE,
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
        let subject = subject_id(&request.get_ref().subject_id)?;
        let purpose = request.get_ref().request_id.clone();
        // The request id is kept in the access trail as the access's purpose.
        if !purpose.is_empty() {
            pdm_runtime::ids::check_request_id(&purpose)
                .map_err(|problem| pdm_runtime::error::invalid_field("request_id", problem))?;
        }
        let records = self.export(&subject).await?;
        let stream = tokio_stream::iter(records.into_iter().map(|record| {
            Ok(pb::ExportSubjectResponse {
                record: Some(record),
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
        let r = request.get_ref();
        let mut v = FieldViolations::new();
        let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
        if !r.request_id.is_empty() {
            v.check("request_id", check_request_id(&r.request_id));
        }
        v.finish()?;
        let subject = checked(subject)?;
        let now = self.inner.clock.now();
        let known = match self.state_of(&subject, now).await? {
            Known::Subject(_) => true,
            Known::Unknown => false,
        };
        if known {
            let kind = if r.restricted {
                LedgerEntryKind::Restrict
            } else {
                LedgerEntryKind::Unrestrict
            };
            let actor = if r.request_id.is_empty() {
                "privacy-request".to_owned()
            } else {
                format!("request:{}", r.request_id)
            };
            self.record(
                &subject,
                vec![NewEntry {
                    subject_id: subject,
                    kind,
                    purpose: None,
                    channel: None,
                    source: Source::PrivacyRequest,
                    policy_version: None,
                    text_hash: None,
                    actor: Some(actor),
                    occurred_at: now,
                }],
            )
            .await?;
        }
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
        let mut v = FieldViolations::new();
        v.check("run_id", check_request_id(&r.run_id));
        let mut cutoff = None;
        for (i, rule) in r.rules.iter().enumerate() {
            if rule.category.is_empty() {
                v.add(format!("rules[{i}].category"), "required");
            }
            match rule.cutoff.as_ref().and_then(from_timestamp) {
                Some(c) if rule.category == PROOF => cutoff = Some(c),
                Some(_) => {}
                None => v.add(format!("rules[{i}].cutoff"), "required, a valid time"),
            }
        }
        let mut held = Vec::new();
        let mut hold_ids = Vec::new();
        let mut blanket = false;
        for (i, hold) in r.holds.iter().enumerate() {
            if hold.hold_id.is_empty() {
                v.add(format!("holds[{i}].hold_id"), "required");
            }
            if !(hold.category.is_empty() || hold.category == PROOF) {
                continue;
            }
            if hold.subject_id.is_empty() {
                blanket = true;
                hold_ids.push(hold.hold_id.clone());
            } else if let Some(s) = v.check(
                &format!("holds[{i}].subject_id"),
                hold.subject_id.parse::<SubjectId>(),
            ) {
                held.push(self.inner.subjects.pseudonym(&s));
                hold_ids.push(hold.hold_id.clone());
            }
        }
        v.finish()?;
        // The access trail's own rule (`audit.access`), beside the ledger's.
        let mut results = Vec::new();
        if let Some((trail, caller)) = trail {
            results.extend(trail.purge(&r, &caller, self.inner.clock.now()).await?);
        }
        let Some(cutoff) = cutoff else {
            return Ok(Response::new(pb::PurgeExpiredResponse { results }));
        };
        let (purged, held_count) = if blanket {
            let (expired, _) = self.inner.store.purge_proof(cutoff, &[], true).await?;
            (0, expired)
        } else {
            self.inner
                .store
                .purge_proof(cutoff, &held, r.dry_run)
                .await?
        };
        tracing::info!(run_id = %r.run_id, purged, held = held_count, dry_run = r.dry_run, "consent proof purge");
        results.insert(
            0,
            pb::PurgeResult {
                category: PROOF.to_owned(),
                purged,
                held: held_count,
                hold_ids: if held_count > 0 { hold_ids } else { Vec::new() },
            },
        );
        Ok(Response::new(pb::PurgeExpiredResponse { results }))
    }
}
