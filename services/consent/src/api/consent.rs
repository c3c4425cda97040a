//! `pdm.consent.v1.ConsentService`.

use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{self as pb, LedgerEntryKind, Source, consent_service_server::ConsentService},
};
use pdm_runtime::{audit, tls::identity::Caller};
use tonic::{Request, Response, Status, metadata::MetadataMap};
use uuid::Uuid;

use super::{
    ConsentApi, convert, metrics,
    requests::{Check, MAX_ACTOR, MAX_BATCH, MAX_PAGE, MAX_POLICY_VERSION, checked},
    watch,
};
use crate::{
    cache::Known,
    domain::{
        decision::{self, Decision},
        event::CHANNELS,
        state::SubjectState,
    },
    error::{ConsentError, Result},
    store::NewEntry,
};

/// The Global Privacy Control request header.
const GPC_HEADER: &str = "sec-gpc";

fn entry(
    subject: &Uuid,
    kind: LedgerEntryKind,
    source: Source,
    actor: String,
    now: chrono::DateTime<chrono::Utc>,
) -> NewEntry {
    NewEntry {
        subject_id: subject.to_string(),
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
        subject: &Uuid,
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
        subject: &Uuid,
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let purpose = c.purpose("purpose", &r.purpose, &self.inner.catalogue);
        let source = c.source(r.source);
        let policy_version = c.text("policy_version", &r.policy_version, MAX_POLICY_VERSION);
        let text_hash = c.text_hash(&r.text_hash);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        let occurred_at = c.occurred_at(r.occurred_at.as_ref(), now);
        // Policy, "Consent to be obtained": sensitive details need the subject's explicit
        // permission (Art. 9(2)(a) GDPR), given to us and recorded as such.
        let special = purpose.is_some_and(|i| self.inner.catalogue.get(i).special_category);
        if special && source == Some(Source::Import) {
            c.add(
                "source",
                "explicit consent to a special category must be given to us directly, not imported",
            );
        }
        c.finish()?;
        let (subject, purpose) = (checked(subject)?, checked(purpose)?);
        let kind = if special {
            LedgerEntryKind::ExplicitGrant
        } else {
            LedgerEntryKind::Grant
        };

        let state = self.state_with_gpc(&metadata, caller, &subject).await?;
        let p = self.inner.catalogue.get(purpose);
        let basis = p.basis(state.region);
        if basis != LegalBasis::Consent {
            return Err(ConsentError::NotApplicable(format!(
                "purpose {} rests on {} for this subject's region, not on consent",
                p.key,
                basis.as_str_name()
            ))
            .into());
        }
        let rows = self
            .record(
                &subject,
                vec![NewEntry {
                    subject_id: subject.to_string(),
                    kind,
                    purpose: Some(p.key.clone()),
                    channel: None,
                    source: checked(source)?,
                    policy_version,
                    text_hash,
                    actor,
                    occurred_at: checked(occurred_at)?,
                }],
            )
            .await?;
        tracing::info!(subject_id = %subject, purpose = %p.key, explicit = special, "consent granted");
        Ok(audit::respond(
            pb::GrantConsentResponse {
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let purpose = c.purpose("purpose", &r.purpose, &self.inner.catalogue);
        let source = c.source(r.source);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        c.finish()?;
        let (subject, purpose) = (checked(subject)?, checked(purpose)?);
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let key = self.inner.catalogue.get(purpose).key.clone();
        let now = self.inner.clock.now();
        let mut e = entry(
            &subject,
            LedgerEntryKind::Withdraw,
            checked(source)?,
            checked(actor)?,
            now,
        );
        e.purpose = Some(key.clone());
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, purpose = %key, "consent withdrawn");
        Ok(audit::respond(
            pb::WithdrawConsentResponse {
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        c.finish()?;
        let subject = checked(subject)?;
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
        let r = request.into_inner();
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        if r.after_sequence < 0 {
            c.add("after_sequence", "must not be negative");
        }
        if !(0..=MAX_PAGE).contains(&r.page_size) {
            c.add("page_size", "0 to 1000");
        }
        c.finish()?;
        let subject = checked(subject)?;
        if !self.visible(caller.as_ref(), &subject).await? {
            // What a subject without a ledger gets; nothing of theirs was read.
            return Ok(Response::new(pb::GetConsentHistoryResponse::default()));
        }
        let limit = if r.page_size == 0 {
            100
        } else {
            u64::try_from(r.page_size).unwrap_or(100)
        };
        let rows = self
            .inner
            .store
            .history(&subject.to_string(), r.after_sequence, limit)
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        if r.purpose.is_empty() {
            c.add("purpose", "required");
        }
        c.finish()?;
        let subject = checked(subject)?;
        let purpose = self.inner.catalogue.find(&r.purpose);
        let mut known = self.resolve_for(caller, &subject).await?;
        if let Known::Subject(state) = &mut known {
            self.honour_gpc(&metadata, &subject, state).await?;
        }
        let decision = self.decide(purpose, known);
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
        let r = request.into_inner();
        let mut c = Check::new();
        if r.items.is_empty() {
            c.add("items", "at least one item");
        }
        if r.items.len() > MAX_BATCH {
            // Stop before looking at each of a huge number of items.
            let mut too_many = Check::new();
            too_many.add("items", "at most 10000 items");
            too_many.finish()?;
        }
        let mut parsed = Vec::with_capacity(r.items.len());
        for (i, item) in r.items.iter().enumerate() {
            let subject = c.subject(&format!("items[{i}].subject_id"), &item.subject_id);
            if item.purpose.is_empty() {
                c.add(format!("items[{i}].purpose"), "required");
            }
            parsed.push((subject, self.inner.catalogue.find(&item.purpose)));
        }
        c.finish()?;
        let now = self.inner.clock.now();
        let mut decisions = Vec::with_capacity(parsed.len());
        let mut tally = metrics::Tally::default();
        let mut last: Option<(Uuid, Known)> = None;
        // Scoped once per distinct subject, not per item.
        let mut visible = std::collections::HashSet::new();
        let mut distinct: Vec<Uuid> = parsed.iter().filter_map(|(s, _)| *s).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for subject in distinct {
            if self.visible(caller.as_ref(), &subject).await? {
                visible.insert(subject);
            }
        }
        for (subject, purpose) in parsed {
            let subject = checked(subject)?;
            // Batches often repeat a subject for several purposes: reuse the last lookup.
            let known = match last {
                Some((id, known)) if id == subject => known,
                _ => {
                    // A subject the caller may not see is decided as an unknown one.
                    let known = if visible.contains(&subject) {
                        self.inner.subjects.resolve(&subject, now).await?
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let channel = c.channel(r.channel);
        let kind = c.kind(r.kind);
        c.finish()?;
        let subject = checked(subject)?;
        let mut known = self.resolve_for(caller, &subject).await?;
        let decision = match &mut known {
            Known::Subject(state) => {
                self.honour_gpc(&metadata, &subject, state).await?;
                decision::can_contact(
                    &self.inner.catalogue,
                    state,
                    checked(channel)?,
                    checked(kind)?,
                )
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let channel = c.channel(r.channel);
        let source = c.source(r.source);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        c.finish()?;
        let subject = checked(subject)?;
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let kind = if r.opted_out {
            LedgerEntryKind::OptOut
        } else {
            LedgerEntryKind::OptIn
        };
        let now = self.inner.clock.now();
        let mut e = entry(&subject, kind, checked(source)?, checked(actor)?, now);
        e.channel = channel;
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, channel = ?channel, opted_out = r.opted_out, "contact preference set");
        Ok(audit::respond(
            pb::SetContactPreferenceResponse {
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
        let r = request.into_inner();
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let source = c.source(r.source);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        c.finish()?;
        let subject = checked(subject)?;
        self.known_subject(caller.as_ref(), &subject).await?;
        let kind = if r.do_not_sell {
            LedgerEntryKind::DoNotSell
        } else {
            LedgerEntryKind::AllowSell
        };
        let now = self.inner.clock.now();
        let rows = self
            .record(
                &subject,
                vec![entry(
                    &subject,
                    kind,
                    checked(source)?,
                    checked(actor)?,
                    now,
                )],
            )
            .await?;
        tracing::info!(subject_id = %subject, do_not_sell = r.do_not_sell, "do-not-sell set");
        Ok(audit::respond(
            pb::SetDoNotSellResponse {
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let source = c.source(r.source);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        c.finish()?;
        let subject = checked(subject)?;
        self.state_with_gpc(&metadata, caller, &subject).await?;
        let kind = if r.restricted {
            LedgerEntryKind::Restrict
        } else {
            LedgerEntryKind::Unrestrict
        };
        let now = self.inner.clock.now();
        let rows = self
            .record(
                &subject,
                vec![entry(
                    &subject,
                    kind,
                    checked(source)?,
                    checked(actor)?,
                    now,
                )],
            )
            .await?;
        tracing::info!(subject_id = %subject, restricted = r.restricted, "restriction set");
        Ok(audit::respond(
            pb::SetRestrictionResponse {
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
        let mut c = Check::new();
        let subject = c.subject("subject_id", &r.subject_id);
        let purpose = c.purpose("purpose", &r.purpose, &self.inner.catalogue);
        let source = c.source(r.source);
        let actor = c.text("actor", &r.actor, MAX_ACTOR);
        c.finish()?;
        let (subject, purpose) = (checked(subject)?, checked(purpose)?);
        let state = self.state_with_gpc(&metadata, caller, &subject).await?;
        let p = self.inner.catalogue.get(purpose);
        if !r.withdraw && !p.objectable_in(state.region) {
            // Art. 21 GDPR: the right to object covers processing on legitimate interests
            // (or a public task) and direct marketing, not contract or legal obligations.
            return Err(ConsentError::NotApplicable(format!(
                "purpose {} rests on {} for this subject's region: the right to object does not apply",
                p.key,
                p.basis(state.region).as_str_name()
            ))
            .into());
        }
        let kind = if r.withdraw {
            LedgerEntryKind::WithdrawObjection
        } else {
            LedgerEntryKind::Object
        };
        let now = self.inner.clock.now();
        let mut e = entry(&subject, kind, checked(source)?, checked(actor)?, now);
        e.purpose = Some(p.key.clone());
        let rows = self.record(&subject, vec![e]).await?;
        tracing::info!(subject_id = %subject, purpose = %p.key, withdrawn = r.withdraw, "objection recorded");
        Ok(audit::respond(
            pb::RecordObjectionResponse {
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
        Ok(Response::new(pb::GetLedgerPositionResponse { sequence }))
    }

    type WatchConsentChangesStream = watch::WatchStream;

    async fn watch_consent_changes(
        &self,
        request: Request<pb::WatchConsentChangesRequest>,
    ) -> Result<Response<Self::WatchConsentChangesStream>, Status> {
        let after = request.get_ref().after_sequence;
        if after < 0 {
            return Err(pdm_runtime::error::invalid_field(
                "after_sequence",
                "must not be negative",
            ));
        }
        Ok(Response::new(watch::stream(
            self.inner.store.clone(),
            self.inner.ledger.clone(),
            after,
            self.inner.stop.clone(),
        )))
    }
}
