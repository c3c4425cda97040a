//! `pdm.transfers.v1.TransfersService`.

use pdm_access_trail as audit;
use pdm_proto::{
    consent::v1::{CheckProcessingRequest, Reason},
    transfers::v1::{
        self as pb, Outcome, RecipientRole, transfers_service_server::TransfersService,
    },
};
use pdm_runtime::{SubjectId, convert::timestamp};
use pdm_tls::identity::Caller;
use tonic::{Request, Response, Status};

use super::{TransfersApi, convert, requests};
use crate::{
    domain::{
        authorize::{RecipientFacts, TransferFacts, Verdict, authorize},
        choice::{self, Choice},
    },
    error::{Result, TransfersError},
    store::{LogFilter, entities::transfer_log},
};

/// The consent purpose behind the explicit-consent derogation.
const TRANSFER_CONSENT_PURPOSE: &str = "international_transfer";

impl TransfersApi {
    /// Settles a consent derogation by asking the consent service.
    async fn settle(&self, verdict: Verdict, subject: Option<&SubjectId>) -> Result<Verdict> {
        let Verdict::NeedsExplicitConsent {
            mechanism,
            fallback,
        } = verdict
        else {
            return Ok(verdict);
        };
        let Some(subject) = subject else {
            return Ok(Verdict::Denied {
                outcome: Outcome::DeniedNoExplicitConsent,
                mechanism: Some(mechanism),
                detail: "an explicit-consent derogation needs the subject".into(),
            });
        };
        let answer = self
            .consent
            .clone()
            .check_processing(CheckProcessingRequest {
                subject_id: subject.to_string(),
                purpose: TRANSFER_CONSENT_PURPOSE.to_owned(),
..Default::default()
})
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "consent check for a transfer derogation failed");
                TransfersError::ConsentUnavailable
            })?
            .into_inner();
        if answer.decision.is_some_and(|d| d.allowed) {
            Ok(Verdict::Allowed {
                outcome: Outcome::AllowedMechanism,
                mechanism: Some(mechanism),
                detail: "Art. 49(1)(a) derogation: the subject's explicit consent (occasional transfers only)".into(),
            })
        } else {
            match *fallback {
                Verdict::Denied {
                    outcome: Outcome::DeniedNoMechanism,
                    ..
                } => Ok(Verdict::Denied {
                    outcome: Outcome::DeniedNoExplicitConsent,
                    mechanism: Some(mechanism),
                    detail: "the subject has not given explicit consent to the transfer".into(),
                }),
                other => Ok(other),
            }
        }
    }

    /// Applies the subject's choices to a disclosure decided per person, asking the consent
    /// service's one decision function only when the register and mechanisms allowed it.
    async fn follow_choices(
        &self,
        verdict: Verdict,
        role: RecipientRole,
        subject: Option<&SubjectId>,
        purpose: &str,
    ) -> Result<Verdict> {
        if !matches!(verdict, Verdict::Allowed { .. }) || !choice::decided_per_person(role) {
            return Ok(verdict);
        }
        let Some(subject) = subject else {
            return Ok(choice::apply(verdict, role, None));
        };
        let decision = self
            .consent
            .clone()
            .check_processing(CheckProcessingRequest {
                subject_id: subject.to_string(),
                purpose: purpose.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "consent check for a disclosure failed");
                TransfersError::ConsentUnavailable
            })?
            .into_inner()
            .decision
            .unwrap_or_default();
        let reason = Reason::try_from(decision.reason).unwrap_or_default();
        Ok(choice::apply(
            verdict,
            role,
            Some(Choice {
                allowed: decision.allowed,
                reason: reason.as_str_name().to_owned(),
            }),
        ))
    }
}

#[tonic::async_trait]
impl TransfersService for TransfersApi {
    async fn register_recipient(
        &self,
        request: Request<pb::RegisterRecipientRequest>,
    ) -> Result<Response<pb::RegisterRecipientResponse>, Status> {
        let row = requests::parse_register_recipient(request.get_ref(), self.clock.now())?;
        let (stored, created) = self.store.upsert_recipient(row).await?;
        tracing::info!(recipient = %stored.key, created, "recipient registered");
        Ok(Response::new(pb::RegisterRecipientResponse {
            recipient: Some(convert::recipient(stored)),
            created,
        }))
    }

    async fn list_recipients(
        &self,
        request: Request<pb::ListRecipientsRequest>,
    ) -> Result<Response<pb::ListRecipientsResponse>, Status> {
        let caller = request.extensions().get::<Caller>();
        let filter = requests::parse_list_recipients(request.get_ref())?;
        let subject = filter.subject;
        if let Some(subject) = &subject
            && !self.visible(caller, subject).await?
        {
            // What a subject nothing was disclosed of gets; nothing of theirs was read.
            return Ok(Response::new(pb::ListRecipientsResponse::default()));
        }
        let mut rows = match &subject {
            Some(subject) => {
                self.store
                    .recipients_of_subject(subject, self.clock.now())
                    .await?
            }
            None => self.store.recipients(None).await?,
        };
        if let Some(country) = filter.country {
            rows.retain(|r| r.country == country);
        }
        Ok(audit::accessed(
            Response::new(pb::ListRecipientsResponse {
                recipients: rows.into_iter().map(convert::recipient).collect(),
            }),
            subject.map(|s| s.to_string()).unwrap_or_default(),
            "",
        ))
    }

    async fn record_mechanism(
        &self,
        request: Request<pb::RecordMechanismRequest>,
    ) -> Result<Response<pb::RecordMechanismResponse>, Status> {
        let row = requests::parse_record_mechanism(request.get_ref(), self.clock.now())?;
        if self.store.recipient(&row.recipient_id).await?.is_none() {
            return Err(TransfersError::NotFound("recipient").into());
        }
        let stored = self.store.insert_mechanism(row).await?;
        tracing::info!(mechanism_id = %stored.mechanism_id, kind = %stored.kind, "mechanism recorded");
        Ok(Response::new(pb::RecordMechanismResponse {
            mechanism: Some(convert::mechanism(stored)),
        }))
    }

    async fn list_mechanisms(
        &self,
        request: Request<pb::ListMechanismsRequest>,
    ) -> Result<Response<pb::ListMechanismsResponse>, Status> {
        let recipient_id = requests::parse_list_mechanisms(request.get_ref())?;
        let rows = self.store.mechanisms(recipient_id.as_deref()).await?;
        Ok(Response::new(pb::ListMechanismsResponse {
            mechanisms: rows.into_iter().map(convert::mechanism).collect(),
        }))
    }

    async fn authorize_transfer(
        &self,
        request: Request<pb::AuthorizeTransferRequest>,
    ) -> Result<Response<pb::AuthorizeTransferResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let t = requests::parse_authorize_transfer(request.get_ref(), self.clock.now())?;
        let subject = t.subject.map(|s| s.to_string());
        // A subject the caller may not see is unknown to it: nothing is decided or logged.
        if let Some(subject) = &t.subject
            && !self.visible(caller.as_ref(), subject).await?
        {
            return Err(TransfersError::NotFound("subject").into());
        }

        let recipient = self
            .store
            .recipient(&t.recipient_id)
            .await?
            .ok_or(TransfersError::NotFound("recipient"))?;
        let role = RecipientRole::from_str_name(&recipient.role).unwrap_or_default();
        let order = requests::legal_order_for(role, t.legal_order)?;
        let mechanisms: Vec<_> = self
            .store
            .mechanisms(Some(&recipient.recipient_id))
            .await?
            .iter()
            .map(convert::rule_mechanism)
            .collect();
        let (purposes, recipient_categories, certifications) = (
            convert::list(&recipient.purposes),
            convert::list(&recipient.data_categories),
            convert::list(&recipient.certifications),
        );
        let now = self.clock.now();
        let verdict = authorize(
            &TransferFacts {
                regime: t.regime,
                purpose: &t.purpose,
                data_categories: &t.data_categories,
                exporter_role: t.exporter_role,
            },
            &RecipientFacts {
                country: &recipient.country,
                role,
                purposes: &purposes,
                data_categories: &recipient_categories,
                certifications: &certifications,
            },
            &mechanisms,
            &self.adequacy,
            now,
        );
        let verdict = self.settle(verdict, t.subject.as_ref()).await?;
        let verdict = self
            .follow_choices(verdict, role, t.subject.as_ref(), &t.purpose)
            .await?;
        let (allowed, outcome, mechanism, detail) = match verdict {
            Verdict::Allowed {
                outcome,
                mechanism,
                detail,
            } => (true, outcome, mechanism, detail),
            Verdict::Denied {
                outcome,
                mechanism,
                detail,
            } => (false, outcome, mechanism, detail),
            Verdict::NeedsExplicitConsent { .. } => {
                return Err(TransfersError::Internal("unsettled derogation").into());
            }
        };
        // Every decision, allowed or denied, goes to the log before the caller hears it.
        let row = self
            .store
            .log(transfer_log::Model {
                log_id: uuid::Uuid::now_v7().to_string(),
                recipient_id: recipient.recipient_id.clone(),
                recipient_name: recipient.name.clone(),
                country: recipient.country.clone(),
                regime: t.regime.as_str_name().to_owned(),
                purpose: t.purpose.clone(),
                data_categories: serde_json::to_string(&t.data_categories).unwrap_or_default(),
                subject_id: subject.clone(),
                allowed,
                outcome: outcome.as_str_name().to_owned(),
                mechanism_id: mechanism.as_ref().map(|(id, _)| id.clone()),
                mechanism_kind: mechanism.as_ref().map(|(_, k)| k.as_str_name().to_owned()),
                detail,
                reference: t.reference,
                decided_at: now,
                legal_basis: order.as_ref().map(|o| o.legal_basis.clone()),
                order_reference: order.as_ref().map(|o| o.order_reference.clone()),
                order_issued_by: order.as_ref().and_then(|o| o.issued_by.clone()),
                secret_until: order.as_ref().and_then(|o| o.secret_until),
            })
            .await?;
        tracing::info!(
            log_id = %row.log_id,
            recipient = %recipient.key,
            regime = t.regime.as_str_name(),
            allowed,
            outcome = outcome.as_str_name(),
            "transfer decided"
        );
        Ok(audit::accessed(
            Response::new(pb::AuthorizeTransferResponse {
                decision: Some(convert::decision(&row)),
            }),
            subject.unwrap_or_default(),
            row.purpose.clone(),
        ))
    }

    async fn list_transfer_log(
        &self,
        request: Request<pb::ListTransferLogRequest>,
    ) -> Result<Response<pb::ListTransferLogResponse>, Status> {
        let query = requests::parse_list_transfer_log(request.get_ref())?;
        let subject = query.subject;
        let limit = query.limit;
        let rows = self
            .store
            .log_page(&LogFilter {
                recipient_id: query.recipient_id,
                country: query.country,
                subject_id: subject,
                from: query.from,
                to: query.to,
                before: query.before,
                limit,
            })
            .await?;
        let next_page_token = if u64::try_from(rows.len()).unwrap_or(0) == limit {
            rows.last().map(|r| r.log_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(audit::accessed(
            Response::new(pb::ListTransferLogResponse {
                entries: rows.into_iter().map(convert::log_entry).collect(),
                next_page_token,
            }),
            subject.map(|s| s.to_string()).unwrap_or_default(),
            "",
        ))
    }

    async fn list_expiring_mechanisms(
        &self,
        request: Request<pb::ListExpiringMechanismsRequest>,
    ) -> Result<Response<pb::ListExpiringMechanismsResponse>, Status> {
        let within = requests::parse_list_expiring_mechanisms(request.get_ref())?;
        let now = self.clock.now();
        let until = now + within;
        let names: std::collections::HashMap<String, String> = self
            .store
            .recipients(None)
            .await?
            .into_iter()
            .map(|r| (r.recipient_id, r.name))
            .collect();
        let mut due = Vec::new();
        for m in self.store.mechanisms_due(until).await? {
            // Whichever date comes first is the one to act on.
            let (what, at) = match (
                m.expires_at.filter(|e| *e < until),
                m.review_due.filter(|r| *r < until),
            ) {
                (Some(e), Some(r)) if r < e => ("review", r),
                (Some(e), _) => ("expires", e),
                (None, Some(r)) => ("review", r),
                (None, None) => continue,
            };
            due.push(pb::ExpiringMechanism {
                recipient_name: names.get(&m.recipient_id).cloned().unwrap_or_default(),
                due: what.to_owned(),
                due_at: Some(timestamp(at)),
                overdue: at <= now,
                mechanism: Some(convert::mechanism(m)),
            });
        }
        due.sort_by_key(|d| d.due_at.map(|t| (t.seconds, t.nanos)));
        Ok(Response::new(pb::ListExpiringMechanismsResponse {
            mechanisms: due,
        }))
    }

    async fn list_adequacy(
        &self,
        _request: Request<pb::ListAdequacyRequest>,
    ) -> Result<Response<pb::ListAdequacyResponse>, Status> {
        Ok(Response::new(pb::ListAdequacyResponse {
            lists: self.adequacy.iter().map(convert::adequacy).collect(),
        }))
    }
}
