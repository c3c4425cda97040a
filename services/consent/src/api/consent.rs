//! `pdm.consent.v1.ConsentService`.

use pdm_access_trail as audit;
use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{self as pb, LedgerEntryKind, Source, consent_service_server::ConsentService},
};
use pdm_runtime::SubjectId;
use pdm_tls::identity::Caller;
use tonic::{Request, Response, Status, metadata::MetadataMap};

use super::{ConsentApi, convert, metrics, requests, token_of, watch};
use crate::{
    cache::Known,
    domain::{
        decision::{self, Decision},
        event::CHANNELS,
        state::SubjectState,
        token::Token,
    },
    error::{ConsentError, Result},
    store::NewEntry,
};

/// The Global Privacy Control request header.
const GPC_HEADER: &str = "sec-gpc";

fn entry(
    subject: &SubjectId,
    kind: LedgerEntryKind,
    source: Source,
    actor: String,
    now: chrono::DateTime<chrono::Utc>,
) -> NewEntry {
    NewEntry {
        subject_id: *subject,
        kind,
        purpose: None,
        channel: None,
        source,
        policy_version: None,
        text_hash: None,
        actor: Some(actor),
        occurred_at: now,
    }
}

impl ConsentApi {
    /// "CCPA Privacy Rights": a Global Privacy Control signal is an opt-out of sale and
    /// sharing, recorded with GPC as its source, before the request is answered.
    async fn honour_gpc(
        &self,
        metadata: &MetadataMap,
        subject: &SubjectId,
        state: &mut SubjectState,
    ) -> Result<()> {
        let signalled = metadata
            .get(GPC_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1");
        if !signalled || state.do_not_sell {
            return Ok(());
        }
        let now = self.inner.clock.now();
        self.record(
            subject,
            vec![entry(
                subject,
                LedgerEntryKind::DoNotSell,
                Source::Gpc,
                "gpc-signal".to_owned(),
                now,
            )],
        )
        .await?;
        state.do_not_sell = true;
        tracing::info!(subject_id = %subject, "global privacy control signal recorded as do-not-sell");
        Ok(())
    }

    fn decide(&self, purpose: Option<usize>, known: Known) -> Decision {
        let Some(index) = purpose else {
            return Decision::unknown_purpose();
        };
        let purpose = self.inner.catalogue.get(index);
        match known {
            Known::Subject(state) => decision::decide(purpose, index, &state),
            Known::Unknown => Decision::unknown_subject(LegalBasis::Unspecified),
        }
    }

    async fn state_with_gpc(
        &self,
        metadata: &MetadataMap,
        caller: Option<&Caller>,
        subject: &SubjectId,
    ) -> Result<SubjectState> {
        let mut state = self.known_subject(caller, subject).await?;
        self.honour_gpc(metadata, subject, &mut state).await?;
        Ok(state)
    }
}

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    async fn list_purposes(
        &self,
        _request: Request<pb::ListPurposesRequest>,
    ) -> Result<Response<pb::ListPurposesResponse>, Status> {
        Ok(Response::new(pb::ListPurposesResponse {
            purposes: self
                .inner
                .catalogue
                .all()
                .iter()
                .map(convert::purpose)
                .collect(),
        }))
    }

    async fn grant_consent(
        &self,
        request: Request<pb::GrantConsentRequest>,
    ) -> Result<Response<pb::GrantConsentResponse>, Status> {
        let now = self.inner.clock.now();
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let grant = requests::parse_grant_consent(&r, &self.inner.catalogue, now)?;
        let subject = grant.subject;
        let state = self.state_with_gpc(&metadata, caller, &subject).await?;
        let p = self.inner.catalogue.get(grant.purpose);
        let basis = p.basis(state.region);
        if basis != LegalBasis::Consent {
            return Err(ConsentError::NotApplicable(format!(
                "purpose {} rests on {} for this subject's region, not on consent",
                p.key,
                basis.as_str_name()
            ))
            .into());
        }
        let explicit = grant.kind == LedgerEntryKind::ExplicitGrant;
        let rows = self
            .record(
                &subject,
                vec![NewEntry {
                    subject_id: subject,
                    kind: grant.kind,
                    purpose: Some(p.key.clone()),
                    channel: None,
                    source: grant.source,
                    policy_version: Some(grant.policy_version),
                    text_hash: Some(grant.text_hash),
                    actor: Some(grant.actor),
                    occurred_at: grant.occurred_at,
                }],
            )
            .await?;
        tracing::info!(subject_id = %subject, purpose = %p.key, explicit, "consent granted");
        Ok(audit::respond(
            pb::GrantConsentResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            p.key.clone(),
        ))
    }

    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let change = requests::parse_withdraw_consent(&r, &self.inner.catalogue)?;
        let subject = change.subject;
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let key = self.inner.catalogue.get(change.purpose).key.clone();
        let now = self.inner.clock.now();
        let mut e = entry(
            &subject,
            LedgerEntryKind::Withdraw,
            change.source,
            change.actor,
            now,
        );
        e.purpose = Some(key.clone());
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, purpose = %key, "consent withdrawn");
        Ok(audit::respond(
            pb::WithdrawConsentResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            key,
        ))
    }

    async fn get_consents(
        &self,
        request: Request<pb::GetConsentsRequest>,
    ) -> Result<Response<pb::GetConsentsResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let subject = requests::parse_get_consents(&r)?;
        let state = self.state_with_gpc(&metadata, caller, &subject).await?;
        let catalogue = &self.inner.catalogue;
        let purposes = catalogue
            .all()
            .iter()
            .enumerate()
            .map(|(i, p)| convert::purpose_state(p, i, &state))
            .collect();
        Ok(audit::respond(
            pb::GetConsentsResponse {
                subject_id: subject.to_string(),
                region: state.region as i32,
                purposes,
                restricted: state.restricted,
                do_not_sell: state.do_not_sell,
                opted_out_channels: CHANNELS
                    .iter()
                    .filter(|ch| state.opted_out(**ch))
                    .map(|ch| *ch as i32)
                    .collect(),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_consent_history(
        &self,
        request: Request<pb::GetConsentHistoryRequest>,
    ) -> Result<Response<pb::GetConsentHistoryResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let page = requests::parse_get_consent_history(request.get_ref())?;
        let (subject, limit) = (page.subject, page.limit);
        if !self.visible(caller.as_ref(), &subject).await? {
            // What a subject without a ledger gets; nothing of theirs was read.
            return Ok(Response::new(pb::GetConsentHistoryResponse::default()));
        }
        let rows = self
            .inner
            .store
            .history(&subject, page.after_sequence, limit)
            .await?;
        let next = if u64::try_from(rows.len()).unwrap_or(0) == limit {
            rows.last().map_or(0, |r| r.seq)
        } else {
            0
        };
        Ok(audit::respond(
            pb::GetConsentHistoryResponse {
                entries: rows.into_iter().map(convert::entry).collect(),
                next_after_sequence: next,
            },
            subject.to_string(),
            "",
        ))
    }

    async fn check_processing(
        &self,
        request: Request<pb::CheckProcessingRequest>,
    ) -> Result<Response<pb::CheckProcessingResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let requests::AtLeast { check, at_least } =
            requests::parse_check_processing(&r, &self.inner.catalogue)?;
        self.catch_up(at_least).await?;
        let mut known = self.resolve_for(caller, &check.subject).await?;
        if let Known::Subject(state) = &mut known {
            self.honour_gpc(&metadata, &check.subject, state).await?;
        }
        let decision = self.decide(check.purpose, known);
        metrics::count(&decision);
        Ok(Response::new(pb::CheckProcessingResponse {
            decision: Some(convert::decision(decision)),
        }))
    }

    async fn batch_check_processing(
        &self,
        request: Request<pb::BatchCheckProcessingRequest>,
    ) -> Result<Response<pb::BatchCheckProcessingResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let requests::AtLeast {
            check: parsed,
            at_least,
        } = requests::parse_batch_check_processing(request.get_ref(), &self.inner.catalogue)?;
        self.catch_up(at_least).await?;
        let now = self.inner.clock.now();
        let mut decisions = Vec::with_capacity(parsed.len());
        let mut tally = metrics::Tally::default();
        let mut last: Option<(SubjectId, Known)> = None;
        // Scoped once per distinct subject, not per item.
        let mut visible = std::collections::HashSet::new();
        let mut distinct: Vec<SubjectId> = parsed.iter().map(|item| item.subject).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for subject in distinct {
            if self.visible(caller.as_ref(), &subject).await? {
                visible.insert(subject);
            }
        }
        for requests::ProcessingCheck { subject, purpose } in parsed {
            // Batches often repeat a subject for several purposes: reuse the last lookup.
            let known = match last {
                Some((id, known)) if id == subject => known,
                _ => {
                    // A subject the caller may not see is decided as an unknown one.
                    let known = if visible.contains(&subject) {
                        self.state_of(&subject, now).await?
                    } else {
                        Known::Unknown
                    };
                    last = Some((subject, known));
                    known
                }
            };
            let decision = self.decide(purpose, known);
            tally.add(&decision);
            decisions.push(convert::decision(decision));
        }
        // Counted once every decision is made: a batch that fails counts none.
        tally.record();
        Ok(Response::new(pb::BatchCheckProcessingResponse {
            decisions,
        }))
    }

    async fn can_contact(
        &self,
        request: Request<pb::CanContactRequest>,
    ) -> Result<Response<pb::CanContactResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let requests::AtLeast { check, at_least } = requests::parse_can_contact(&r)?;
        self.catch_up(at_least).await?;
        let mut known = self.resolve_for(caller, &check.subject).await?;
        let decision = match &mut known {
            Known::Subject(state) => {
                self.honour_gpc(&metadata, &check.subject, state).await?;
                decision::can_contact(&self.inner.catalogue, state, check.channel, check.kind)
            }
            Known::Unknown => Decision::unknown_subject(LegalBasis::Unspecified),
        };
        metrics::count(&decision);
        Ok(Response::new(pb::CanContactResponse {
            decision: Some(convert::decision(decision)),
        }))
    }

    async fn set_contact_preference(
        &self,
        request: Request<pb::SetContactPreferenceRequest>,
    ) -> Result<Response<pb::SetContactPreferenceResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let preference = requests::parse_set_contact_preference(&r)?;
        let (subject, channel) = (preference.subject, preference.channel);
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let kind = if preference.opted_out {
            LedgerEntryKind::OptOut
        } else {
            LedgerEntryKind::OptIn
        };
        let now = self.inner.clock.now();
        let mut e = entry(&subject, kind, preference.source, preference.actor, now);
        e.channel = Some(channel);
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, channel = ?channel, opted_out = preference.opted_out, "contact preference set");
        Ok(audit::respond(
            pb::SetContactPreferenceResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn set_do_not_sell(
        &self,
        request: Request<pb::SetDoNotSellRequest>,
    ) -> Result<Response<pb::SetDoNotSellResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let setting = requests::parse_set_do_not_sell(request.get_ref())?;
        let subject = setting.subject;
        self.known_subject(caller.as_ref(), &subject).await?;
        let kind = if setting.on {
            LedgerEntryKind::DoNotSell
        } else {
            LedgerEntryKind::AllowSell
        };
        let now = self.inner.clock.now();
        let rows = self
            .record(
                &subject,
                vec![entry(&subject, kind, setting.source, setting.actor, now)],
            )
            .await?;
        tracing::info!(subject_id = %subject, do_not_sell = setting.on, "do-not-sell set");
        Ok(audit::respond(
            pb::SetDoNotSellResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn set_restriction(
        &self,
        request: Request<pb::SetRestrictionRequest>,
    ) -> Result<Response<pb::SetRestrictionResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let setting = requests::parse_set_restriction(&r)?;
        let subject = setting.subject;
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let kind = if setting.on {
            LedgerEntryKind::Restrict
        } else {
            LedgerEntryKind::Unrestrict
        };
        let now = self.inner.clock.now();
        let rows = self
            .record(
                &subject,
                vec![entry(&subject, kind, setting.source, setting.actor, now)],
            )
            .await?;
        tracing::info!(subject_id = %subject, restricted = setting.on, "restriction set");
        Ok(audit::respond(
            pb::SetRestrictionResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn record_objection(
        &self,
        request: Request<pb::RecordObjectionRequest>,
    ) -> Result<Response<pb::RecordObjectionResponse>, Status> {
        let (metadata, extensions, r) = request.into_parts();
        let caller = extensions.get::<Caller>();
        let objection = requests::parse_record_objection(&r, &self.inner.catalogue)?;
        let subject = objection.subject;
        let state = self.state_with_gpc(&metadata, caller, &subject).await?;
        let p = self.inner.catalogue.get(objection.purpose);
        if !objection.withdraw && !p.objectable_in(state.region) {
            // Art. 21 GDPR: the right to object covers processing on legitimate interests
            // (or a public task) and direct marketing, not contract or legal obligations.
            return Err(ConsentError::NotApplicable(format!(
                "purpose {} rests on {} for this subject's region: the right to object does not apply",
                p.key,
                p.basis(state.region).as_str_name()
            ))
            .into());
        }
        let kind = if objection.withdraw {
            LedgerEntryKind::WithdrawObjection
        } else {
            LedgerEntryKind::Object
        };
        let now = self.inner.clock.now();
        let mut e = entry(&subject, kind, objection.source, objection.actor, now);
        e.purpose = Some(p.key.clone());
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, purpose = %p.key, withdrawn = objection.withdraw, "objection recorded");
        Ok(audit::respond(
            pb::RecordObjectionResponse {
                consistency_token: token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            p.key.clone(),
        ))
    }

    async fn issue_unsubscribe_link(
        &self,
        request: Request<pb::IssueUnsubscribeLinkRequest>,
    ) -> Result<Response<pb::IssueUnsubscribeLinkResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        self.issue_link(caller.as_ref(), request.get_ref()).await
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::UnsubscribeRequest>,
    ) -> Result<Response<pb::UnsubscribeResponse>, Status> {
        self.unsubscribe_by_link(request.get_ref()).await
    }

    async fn get_ledger_position(
        &self,
        _request: Request<pb::GetLedgerPositionRequest>,
    ) -> Result<Response<pb::GetLedgerPositionResponse>, Status> {
        // The database, not this replica's memory: writes made through other replicas count.
        let sequence = self.inner.store.max_seq().await?;
        Ok(Response::new(pb::GetLedgerPositionResponse {
            sequence,
            consistency_token: Token::at(sequence).to_string(),
        }))
    }

    async fn get_consent_statistics(
        &self,
        _request: Request<pb::GetConsentStatisticsRequest>,
    ) -> Result<Response<pb::GetConsentStatisticsResponse>, Status> {
        // Counts only: no subject's data is read out, so no trail entry.
        Ok(Response::new(self.statistics().await?))
    }

    type WatchConsentChangesStream = watch::WatchStream;

    async fn watch_consent_changes(
        &self,
        request: Request<pb::WatchConsentChangesRequest>,
    ) -> Result<Response<Self::WatchConsentChangesStream>, Status> {
        let after = requests::parse_watch_consent_changes(request.get_ref())?;
        let viewer = watch::Viewer {
            caller: request.extensions().get::<Caller>().cloned(),
            relationships: self.inner.relationships.clone(),
        };
        Ok(Response::new(watch::stream(
            self.inner.store.clone(),
            self.inner.ledger.clone(),
            after,
            viewer,
            self.inner.stop.clone(),
        )))
    }
}
