//! `pdm.rights.v1.RightsService`.

use super::access::Viewer;
use pdm_access_trail as audit;
use pdm_tls::identity::Caller;
use std::pin::Pin;

use chrono::{Datelike, SubsecRound as _, TimeZone, Utc};
use pdm_proto::rights::v1::{
    self as pb, Regime, RequestKind, Status, rights_service_server::RightsService,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status as GrpcStatus};

use super::{RightsApi, convert, requests};
use crate::{
    domain::{
        deadline,
        report::{median, reason_counts},
    },
    error::{Result, RightsError},
    sealed::{self, Details},
    store::{
        KeyOf, RequestFilter, RequestStatus,
        entities::{outbox, request},
    },
};

type WatchStream =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::WatchRequestResponse, GrpcStatus>> + Send>>;

impl RightsApi {
    /// Who is looking at request `id`; NOT_FOUND when it does not exist or the caller may
    /// not see it (the two are not told apart).
    async fn visible(
        &self,
        caller: Option<&Caller>,
        id: &str,
        session_token: &str,
    ) -> Result<Viewer> {
        let row = self.store.request(id).await?.ok_or(RightsError::NotFound)?;
        self.viewer(caller, &row, session_token).await
    }

    pub(super) async fn load(&self, id: &str) -> Result<pb::DataSubjectRequest> {
        let row = self.store.request(id).await?.ok_or(RightsError::NotFound)?;
        let tasks = self.store.tasks_of(id).await?;
        let mut request = convert::request(row, tasks, self.clock.now());
        request.messages = self
            .store
            .messages_of(id)
            .await?
            .into_iter()
            .map(convert::message)
            .collect();
        if let Some(refusal) = request.refusal.as_mut() {
            refusal.notified_at = self
                .store
                .last_message_at(id, crate::refuse::TOPIC)
                .await?
                .map(pdm_runtime::convert::timestamp);
        }
        Ok(request)
    }

    async fn submit(
        &self,
        r: pb::SubmitRequestRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::DataSubjectRequest> {
        // Times as the database keeps them (PostgreSQL to the microsecond), so that the
        // answer, made from the row in memory, reads as any later read of it does.
        let now = self.clock.now().trunc_subsecs(6);
        let s = requests::submission(
            &r,
            requests::Intake {
                now,
                by_privacy_team: matches!(caller, Some(Caller::Admin)),
            },
        )?;
        super::check_vouching(caller, s.credential.as_ref())?;
        if let Some(reference) = &s.client_reference
            && let Some(existing) = self.store.by_client_reference(reference).await?
        {
            return self.retried(existing, s.subject.as_deref(), caller).await;
        }
        let received = s.received_at.trunc_subsecs(6);
        let request_id = uuid::Uuid::now_v7().to_string();
        let key = self.store.new_key(KeyOf::Request(&request_id), now).await?;
        let mut details = Details {
            purpose: s.purpose,
            rectifications: s.rectifications,
            notes: s.notes,
            operator_reference: match &s.credential {
                Some(pdm_proto::rights::v1::credential::Credential::OperatorReference(r)) => {
                    Some(r.clone())
                }
                _ => None,
            },
            contact_email: None,
            child_report: None,
        };
        let verified = self
            .verify(s.subject.as_deref(), s.credential.as_ref(), caller)
            .await;
        // "Our policy towards the Children": a child's request goes first.
        let priority = i32::from(r.concerns_child);
        // The clock runs from receipt: a letter entered a week late has a week less.
        let due = deadline::due(s.regime, received);
        let tasks = match &verified {
            Some(subject) => {
                details.contact_email = self.contact_email(subject).await?;
                self.tasks(&request_id, s.kind, priority, now)
            }
            None => Vec::new(),
        };
        let row = request::Model {
            request_id: request_id.clone(),
            client_reference: s.client_reference,
            kind: s.kind.as_str_name().to_owned(),
            regime: s.regime.as_str_name().to_owned(),
            subject_id: verified.map(|v| v.to_string()).or(s.subject),
            status: if verified.is_some() {
                RequestStatus::InProgress
            } else {
                RequestStatus::VerificationRequired
            },
            priority,
            received_at: received,
            verified_at: verified.as_ref().map(|_| now),
            due_at: due,
            original_due_at: due,
            extension_reason: None,
            confirm_by: deadline::confirm_by(s.regime, received),
            closed_at: None,
            outcome_reason: None,
            wrapped_key: Vec::new(),
            details: sealed::seal_details(&key, &details)?,
            trace_parent: pdm_runtime::propagation::current_traceparent(),
            package_expires_at: None,
            updated_at: now,
            deletion_reason: s.deletion_reason,
            subject_ref: None,
            forgotten_at: None,
        };
        let stored = row.clone();
        let stored_tasks = tasks.clone();
        let s_subject = stored.subject_id.clone();
        let submitted_by = caller.map(ToString::to_string);
        let receipt = match verified {
            Some(_) => self.receipt(&key, &row).await?,
            None => None,
        };
        if let Err(e) = self
            .store
            .insert_request(row, tasks, submitted_by, receipt.clone())
            .await
        {
            // A retry racing this one stored the request first: answer with it.
            if let Some(reference) = &stored.client_reference
                && let Some(existing) = self.store.by_client_reference(reference).await?
            {
                return self.retried(existing, s_subject.as_deref(), caller).await;
            }
            return Err(e);
        }
        tracing::info!(request_id = %request_id, kind = s.kind.as_str_name(), verified = verified.is_some(), "request received");
        self.wake.notify_one();
        // Answered from what was just stored, as it was stored: reading it back was three
        // statements per request (docs/scale.md, "Task results, written together").
        let mut request = convert::request(stored, stored_tasks, now);
        request.messages = receipt.into_iter().map(convert::message).collect();
        Ok(request)
    }

    /// A retry with a client reference gets the request it made, and only its own: a
    /// reference used for another subject reveals nothing.
    async fn retried(
        &self,
        existing: request::Model,
        subject: Option<&str>,
        caller: Option<&Caller>,
    ) -> Result<pb::DataSubjectRequest> {
        let taken = || {
            RightsError::Invalid(pdm_runtime::error::invalid_field(
                "client_reference",
                "already used by another request",
            ))
        };
        if existing.subject_id.as_deref() != subject {
            return Err(taken());
        }
        // Another client's reference says nothing of its request either.
        let viewer = self
            .viewer(caller, &existing, "")
            .await
            .map_err(|_| taken())?;
        self.load_for(&existing.request_id, &viewer).await
    }

    /// CCPA: receipt is confirmed (within 10 business days: at once, here). The message
    /// to store with the request, if one is owed and an address is known.
    async fn receipt(
        &self,
        key: &pdm_crypto::DataKey,
        row: &request::Model,
    ) -> Result<Option<outbox::Model>> {
        if row.regime != Regime::Ccpa.as_str_name() {
            return Ok(None);
        }
        let body = format!(
            "We received your request {} on {} and will answer by {}.\n",
            row.request_id,
            row.received_at.format("%Y-%m-%d"),
            row.due_at.format("%Y-%m-%d")
        );
        self.outbox
            .message(key, row, "received", &body, self.clock.now())
            .await
    }
}

#[tonic::async_trait]
impl RightsService for RightsApi {
    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> std::result::Result<Response<pb::SubmitRequestResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let request = self.submit(request.into_inner(), caller.as_ref()).await?;
        let (subject, id) = (request.subject_id.clone(), request.request_id.clone());
        Ok(audit::respond(
            pb::SubmitRequestResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn verify_request(
        &self,
        request: Request<pb::VerifyRequestRequest>,
    ) -> std::result::Result<Response<pb::VerifyRequestResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let mut v = pdm_runtime::FieldViolations::new();
        let id = requests::check_request_id(&mut v, &r.request_id);
        let subject = if r.subject_id.is_empty() {
            None
        } else {
            v.check("subject_id", r.subject_id.parse::<pdm_runtime::SubjectId>())
                .map(|s| s.to_string())
        };
        let credential = requests::credential(&mut v, "credential", r.credential.as_ref());
        if credential.is_none()
            && r.credential
                .as_ref()
                .and_then(|c| c.credential.as_ref())
                .is_none()
        {
            v.add("credential", "required");
        }
        v.finish()?;
        super::check_vouching(caller.as_ref(), credential.as_ref())?;
        let id = id.ok_or(RightsError::Internal("validated request id missing"))?;
        let row = self
            .store
            .request(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        let session = match &credential {
            Some(pdm_proto::rights::v1::credential::Credential::SessionToken(token)) => {
                token.as_str()
            }
            _ => "",
        };
        let viewer = self.viewer(caller.as_ref(), &row, session).await?;
        // A request names its subject for good: verifying proves it, never changes it.
        if let (Some(named), Some(asked)) = (&row.subject_id, &subject)
            && named != asked
        {
            return Err(RightsError::Invalid(pdm_runtime::error::invalid_field(
                "subject_id",
                "must be the subject the request names",
            ))
            .into());
        }
        if row.status == RequestStatus::VerificationRequired {
            let claimed = row.subject_id.clone().or(subject);
            if let Some(verified) = self
                .verify(claimed.as_deref(), credential.as_ref(), caller.as_ref())
                .await
            {
                let now = self.clock.now();
                let key = self.store.key(KeyOf::Request(&id)).await?;
                let mut details =
                    sealed::open_details(&key, &row.details).map_err(RightsError::from)?;
                details.contact_email = self.contact_email(&verified).await?;
                let kind = RequestKind::from_str_name(&row.kind).unwrap_or_default();
                let tasks = self.tasks(&id, kind, row.priority, now);
                let sealed_details =
                    sealed::seal_details(&key, &details).map_err(RightsError::from)?;
                let receipt = self
                    .receipt(
                        &key,
                        &request::Model {
                            details: sealed_details.clone(),
                            ..row.clone()
                        },
                    )
                    .await?;
                if self
                    .store
                    .verify(&id, &verified, sealed_details, tasks, receipt, now)
                    .await?
                {
                    tracing::info!(request_id = %id, "request verified");
                    self.wake.notify_one();
                    let _ = self.changes.send(id.clone());
                }
            }
        }
        let request = self.load_for(&id, &viewer).await?;
        let subject = request.subject_id.clone();
        Ok(audit::respond(
            pb::VerifyRequestResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> std::result::Result<Response<pb::GetRequestResponse>, GrpcStatus> {
        let r = request.get_ref();
        let id = checked_id_and_tokens(&r.request_id, &[("session_token", &r.session_token)])?;
        let viewer = self
            .visible(caller_of(&request), &id, &r.session_token)
            .await?;
        let request = self.load_for(&id, &viewer).await?;
        let subject = request.subject_id.clone();
        Ok(audit::respond(
            pb::GetRequestResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> std::result::Result<Response<pb::ListRequestsResponse>, GrpcStatus> {
        let r = request.into_inner();
        let mut v = pdm_runtime::FieldViolations::new();
        let status = match Status::try_from(r.status) {
            Ok(s) => RequestStatus::try_from(s).ok(),
            Err(_) => {
                v.add("status", "unknown status");
                None
            }
        };
        let kind = match RequestKind::try_from(r.kind) {
            Ok(RequestKind::Unspecified) => None,
            Ok(k) => Some(k.as_str_name().to_owned()),
            Err(_) => {
                v.add("kind", "unknown kind");
                None
            }
        };
        let due_before = match r
            .due_before
            .as_ref()
            .map(pdm_runtime::convert::from_timestamp)
        {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                v.add("due_before", "not a valid time");
                None
            }
        };
        if !(0..=500).contains(&r.page_size) {
            v.add("page_size", "0 to 500");
        }
        let after = if r.page_token.is_empty() {
            None
        } else {
            match self.store.request(&r.page_token).await? {
                Some(row) => Some((row.due_at, row.request_id)),
                None => {
                    v.add("page_token", "not a token from a previous page");
                    None
                }
            }
        };
        v.finish()?;
        let limit = if r.page_size == 0 {
            100
        } else {
            u64::try_from(r.page_size).unwrap_or(100)
        };
        let now = self.clock.now();
        let rows = self
            .store
            .list(&RequestFilter {
                status,
                kind,
                due_before,
                overdue_at: r.overdue_only.then_some(now),
                after,
                limit,
            })
            .await?;
        let next_page_token = if u64::try_from(rows.len()).unwrap_or(0) == limit {
            rows.last()
                .map(|r| r.request_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListRequestsResponse {
            requests: rows
                .into_iter()
                .map(|row| convert::request(row, Vec::new(), now))
                .collect(),
            next_page_token,
        }))
    }

    async fn extend_deadline(
        &self,
        request: Request<pb::ExtendDeadlineRequest>,
    ) -> std::result::Result<Response<pb::ExtendDeadlineResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let (id, reason) = requests::request_id_and_reason(&r.request_id, &r.reason)?;
        let row = self
            .store
            .request(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        // Only the privacy team records an extension (the policy promises one month).
        privacy_team_only(caller.as_ref(), "ExtendDeadline")?;
        if !row.status.is_open() {
            return Err(RightsError::NotAllowed("the request is closed".into()).into());
        }
        let now = self.clock.now();
        let regime = Regime::from_str_name(&row.regime).unwrap_or_default();
        let due = deadline::extend(
            regime,
            row.received_at,
            row.original_due_at,
            row.due_at,
            r.months,
            now,
        )
        .map_err(|e| RightsError::NotAllowed(e.to_string()))?;
        // Art. 12(3): an extension is recorded only together with the message telling the
        // subject why and until when; without an address to tell them, none is made.
        let key = self.store.key(KeyOf::Request(&id)).await?;
        let Some(email) = crate::refuse::address(&self.peers, &key, &row).await? else {
            return Err(RightsError::NotAllowed(
                "no address to tell the subject of the extension: it cannot be made".into(),
            )
            .into());
        };
        let body = deadline::extension_message(&id, &reason, row.due_at, due);
        let message = self
            .outbox
            .compose(&key, &row, &email, "extended", &body, now)
            .await?;
        if !self
            .store
            .extend(&id, row.due_at, due, &reason, message, now)
            .await?
        {
            return Err(RightsError::NotAllowed(
                "the request changed meanwhile (closed or extended): look again".into(),
            )
            .into());
        }
        tracing::info!(request_id = %id, "deadline extended");
        let _ = self.changes.send(id.clone());
        self.wake.notify_one();
        // The extension read the subject's address to tell them: in the trail, under the
        // operator who made it (the subject as stored: a request waiting for verification
        // shows none).
        let request = self.load(&id).await?;
        let subject = row.subject_id.clone().unwrap_or_default();
        Ok(audit::respond(
            pb::ExtendDeadlineResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> std::result::Result<Response<pb::CancelRequestResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let (id, reason) = requests::request_id_and_reason(&r.request_id, &r.reason)?;
        let row = self
            .store
            .request(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        self.viewer(caller.as_ref(), &row, "").await?;
        if !row.status.is_open() {
            return Err(RightsError::NotAllowed("the request is closed".into()).into());
        }
        let now = self.clock.now();
        if !self.store.cancel(&id, &reason, now).await? {
            return Err(RightsError::NotAllowed("the request is closed".into()).into());
        }
        let _ = self.changes.send(id.clone());
        let request = self.load(&id).await?;
        let subject = request.subject_id.clone();
        Ok(audit::respond(
            pb::CancelRequestResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    type DownloadExportStream = super::download::DownloadStream;

    async fn download_export(
        &self,
        request: Request<pb::DownloadExportRequest>,
    ) -> std::result::Result<Response<Self::DownloadExportStream>, GrpcStatus> {
        let r = request.get_ref();
        let id = checked_id_and_tokens(
            &r.request_id,
            &[
                ("download_token", &r.download_token),
                ("session_token", &r.session_token),
            ],
        )?;
        let viewer = self
            .visible(caller_of(&request), &id, &r.session_token)
            .await?;
        Ok(Response::new(
            self.download(&id, &viewer, &r.download_token).await?,
        ))
    }

    type WatchRequestStream = WatchStream;

    async fn watch_request(
        &self,
        request: Request<pb::WatchRequestRequest>,
    ) -> std::result::Result<Response<Self::WatchRequestStream>, GrpcStatus> {
        let r = request.get_ref();
        let id = checked_id_and_tokens(&r.request_id, &[("session_token", &r.session_token)])?;
        let viewer = self
            .visible(caller_of(&request), &id, &r.session_token)
            .await?;
        let first = self.load_for(&id, &viewer).await?;
        let mut changes = self.changes.subscribe();
        let (tx, rx) = mpsc::channel(16);
        let api = self.clone();
        tokio::spawn(async move {
            let mut last = first;
            if tx
                .send(Ok(pb::WatchRequestResponse {
                    request: Some(last.clone()),
                }))
                .await
                .is_err()
            {
                return;
            }
            while Status::try_from(last.status)
                .ok()
                .and_then(|s| RequestStatus::try_from(s).ok())
                .is_some_and(RequestStatus::is_open)
            {
                // A change here or elsewhere (another replica): look again at least every second.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    loop {
                        match changes.recv().await {
                            Ok(changed) if changed == id => return,
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                })
                .await;
                let Ok(now) = api.load_for(&id, &viewer).await else {
                    return;
                };
                if now != last {
                    if tx
                        .send(Ok(pb::WatchRequestResponse {
                            request: Some(now.clone()),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last = now;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn deny_request(
        &self,
        request: Request<pb::DenyRequestRequest>,
    ) -> std::result::Result<Response<pb::DenyRequestResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let (id, reasons) = requests::request_id_and_reasons(&r.request_id, &r.reasons)?;
        // Refusing is the privacy team's decision, never a client's.
        privacy_team_only(caller.as_ref(), "DenyRequest")?;
        let row = self
            .store
            .request(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        if !row.status.is_open() {
            return Err(RightsError::NotAllowed("the request is closed".into()).into());
        }
        let now = self.clock.now();
        let key = self.store.key(KeyOf::Request(&id)).await?;
        if !crate::refuse::refuse(
            &self.store,
            &self.outbox,
            &self.peers,
            &key,
            &row,
            &reasons,
            now,
        )
        .await?
        {
            return Err(RightsError::NotAllowed("the request is closed".into()).into());
        }
        let _ = self.changes.send(id.clone());
        self.wake.notify_one();
        let request = self.load(&id).await?;
        let subject = request.subject_id.clone();
        Ok(audit::respond(
            pb::DenyRequestResponse {
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn report_concern(
        &self,
        request: Request<pb::ReportConcernRequest>,
    ) -> std::result::Result<Response<pb::ReportConcernResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let concern = self
            .report_concern(request.into_inner(), caller.as_ref())
            .await?;
        Ok(Response::new(pb::ReportConcernResponse {
            concern: Some(concern),
        }))
    }

    async fn list_concerns(
        &self,
        request: Request<pb::ListConcernsRequest>,
    ) -> std::result::Result<Response<pb::ListConcernsResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let concerns = self
            .list_concerns(request.into_inner(), caller.as_ref())
            .await?;
        Ok(Response::new(pb::ListConcernsResponse { concerns }))
    }

    async fn close_concern(
        &self,
        request: Request<pb::CloseConcernRequest>,
    ) -> std::result::Result<Response<pb::CloseConcernResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let concern = self
            .close_concern(request.into_inner(), caller.as_ref())
            .await?;
        Ok(Response::new(pb::CloseConcernResponse {
            concern: Some(concern),
        }))
    }

    async fn send_notice(
        &self,
        request: Request<pb::SendNoticeRequest>,
    ) -> std::result::Result<Response<pb::SendNoticeResponse>, GrpcStatus> {
        let answer = self.send_notice_to(request.into_inner()).await?;
        let (subject, notice) = answer
            .notice
            .as_ref()
            .map(|n| (n.subject_id.clone(), n.notice_id.clone()))
            .unwrap_or_default();
        // The access trail: the subject's address was read to tell them of the breach.
        Ok(audit::respond(
            answer,
            subject,
            format!("breach notice {notice}"),
        ))
    }

    async fn list_notices(
        &self,
        request: Request<pb::ListNoticesRequest>,
    ) -> std::result::Result<Response<pb::ListNoticesResponse>, GrpcStatus> {
        Ok(Response::new(
            self.list_notices_of(request.into_inner()).await?,
        ))
    }

    async fn report_child(
        &self,
        request: Request<pb::ReportChildRequest>,
    ) -> std::result::Result<Response<pb::ReportChildResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let report = self
            .report_child(request.into_inner(), caller.as_ref())
            .await?;
        Ok(Response::new(pb::ReportChildResponse {
            report: Some(report),
        }))
    }

    async fn confirm_child_report(
        &self,
        request: Request<pb::ConfirmChildReportRequest>,
    ) -> std::result::Result<Response<pb::ConfirmChildReportResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        let (report, request) = self
            .confirm_child_report(request.into_inner(), caller.as_ref())
            .await?;
        let (subject, id) = (request.subject_id.clone(), request.request_id.clone());
        Ok(audit::respond(
            pb::ConfirmChildReportResponse {
                report: Some(report),
                request: Some(request),
            },
            subject,
            id,
        ))
    }

    async fn list_child_reports(
        &self,
        request: Request<pb::ListChildReportsRequest>,
    ) -> std::result::Result<Response<pb::ListChildReportsResponse>, GrpcStatus> {
        let caller = request.extensions().get::<Caller>().cloned();
        Ok(Response::new(
            self.list_child_reports(request.into_inner(), caller.as_ref())
                .await?,
        ))
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> std::result::Result<Response<pb::GetReportResponse>, GrpcStatus> {
        let year = request.get_ref().year;
        if !(2000..=9999).contains(&year) {
            return Err(pdm_runtime::error::invalid_field(
                "year",
                "a year from 2000",
            ));
        }
        let from = Utc
            .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let to = Utc
            .with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let rows = self.store.received_between(from, to).await?;
        let mut kinds = Vec::new();
        for kind in (1..=9).filter_map(|k| RequestKind::try_from(k).ok()) {
            let of_kind: Vec<_> = rows
                .iter()
                .filter(|r| r.kind == kind.as_str_name())
                .collect();
            let complied = of_kind
                .iter()
                .filter(|r| r.status == RequestStatus::Completed)
                .count();
            let denied = of_kind
                .iter()
                .filter(|r| r.status == RequestStatus::Denied)
                .count();
            let days: Vec<f64> = of_kind
                .iter()
                .filter(|r| r.status.is_answered())
                .filter_map(|r| {
                    r.closed_at
                        .map(|c| (c - r.received_at).num_seconds() as f64 / 86_400.0)
                })
                .collect();
            kinds.push(pb::KindReport {
                kind: kind as i32,
                received: u32::try_from(of_kind.len()).unwrap_or(u32::MAX),
                complied: u32::try_from(complied).unwrap_or(u32::MAX),
                denied: u32::try_from(denied).unwrap_or(u32::MAX),
                median_days_to_answer: (median(days) * 10.0).round() / 10.0,
                // Only deletions the subject proved were theirs: a wrong password leaves
                // a cancelled request that is nobody's reason.
                deletion_reasons: reason_counts(
                    of_kind
                        .iter()
                        .filter(|r| r.verified_at.is_some())
                        .map(|r| r.deletion_reason.as_deref()),
                )
                .into_iter()
                .map(|(reason, count)| pb::ReasonCount { reason, count })
                .collect(),
            });
        }
        let _ = from.year();
        Ok(Response::new(pb::GetReportResponse { year, kinds }))
    }
}

/// PERMISSION_DENIED unless the caller is the privacy team (or there is no caller
/// identity: plaintext without a sidecar, where nothing is checked).
pub(super) fn privacy_team_only(caller: Option<&Caller>, method: &str) -> Result<()> {
    match caller {
        Some(caller) if *caller != Caller::Admin => {
            tracing::warn!(caller = %caller, method, "refused: not the privacy team");
            Err(RightsError::Forbidden(format!(
                "{caller} may not call {method}: it is for the privacy team (admin)"
            )))
        }
        _ => Ok(()),
    }
}

/// The caller the authorisation layer found.
fn caller_of<T>(request: &Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// A request id and the token fields beside it, every problem reported together.
fn checked_id_and_tokens(raw_id: &str, tokens: &[(&str, &str)]) -> Result<String> {
    let mut v = pdm_runtime::FieldViolations::new();
    let id = requests::check_request_id(&mut v, raw_id);
    for (field, raw) in tokens {
        requests::check_token(&mut v, field, raw);
    }
    v.finish().map_err(RightsError::Invalid)?;
    id.ok_or(RightsError::Internal("validated request id missing"))
}
