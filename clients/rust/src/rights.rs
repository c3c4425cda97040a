//! The rights service as typed calls: a subject's requests (access, portability,
//! rectification, erasure, restriction, objection, the CCPA's), their progress as a
//! stream, the access package as a download, complaints and reports of a child's data.
//! Errors as [`PdmError`]: a bad field is `InvalidArgument`; a request this client did
//! not submit (without the subject's session) is `NotFound`.
//! Listing, extending and denying requests are the privacy team's (`pdm` command line).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use pdm_proto::rights::v1::{self as pb, rights_service_client::RightsServiceClient};
/// The enums of the rights contract, as generated.
pub use pdm_proto::rights::v1::{
    ChildReportStatus, ConcernKind, ConcernStatus, DeliveryStatus, Regime, RequestKind, Status,
};
use tokio_stream::Stream;
use tonic::{Streaming, transport::Channel};

use crate::{
    call::{Stub, missing, new_key, nonempty, time},
    error::PdmError,
    identity::Credential,
    retry::{Idempotence, RetryPolicy},
};

fn credential(credential: &Credential) -> pb::Credential {
    pb::Credential {
        credential: Some(match credential {
            Credential::Password(p) => pb::credential::Credential::Password(p.clone()),
            Credential::SessionToken(t) => pb::credential::Credential::SessionToken(t.clone()),
        }),
    }
}

/// A request to submit.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// What is asked.
    pub kind: RequestKind,
    /// Under which law.
    pub regime: Regime,
    /// The subject (required unless a session token identifies them).
    pub subject_id: Option<String>,
    /// Proof of identity; without it the request waits for [`RightsClient::verify`].
    pub credential: Option<Credential>,
    /// The purpose objected to (objections).
    pub purpose: Option<String>,
    /// Corrections as (field, correct value) (rectifications; at most 10).
    pub rectifications: Vec<(String, String)>,
    /// The request concerns a child's data: handled first.
    pub concerns_child: bool,
    /// The requester's notes (at most 1,000 characters).
    pub notes: String,
    /// The idempotency key (1-128 printable ASCII, no spaces): a retry returns the first
    /// request. Without one a key is made for the call, so its retries are safe too.
    pub client_reference: Option<String>,
}

impl NewRequest {
    /// A request of `kind` under `regime` with a credential of the subject.
    pub fn new(kind: RequestKind, regime: Regime, credential: Credential) -> Self {
        Self {
            kind,
            regime,
            subject_id: None,
            credential: Some(credential),
            purpose: None,
            rectifications: Vec::new(),
            concerns_child: false,
            notes: String::new(),
            client_reference: None,
        }
    }
}

/// One service's part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The service.
    pub service: String,
    /// What it is asked to do, e.g. `erase`, `export`.
    pub action: String,
    /// `pending`, `running`, `done` or `failed` (retried).
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it finished.
    pub done_at: Option<SystemTime>,
}

/// What the subject is told when their request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reasons.
    pub reasons: Vec<String>,
    /// The right to complain, naming the supervisory authority.
    pub right_to_complain: String,
}

/// How one message to the subject about the request fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it tells: `received`, `extended`, `completed` or `refused`.
    pub topic: String,
    /// Where its delivery stands.
    pub status: DeliveryStatus,
}

/// A data-subject request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRequest {
    /// Request id.
    pub request_id: String,
    /// What is asked.
    pub kind: RequestKind,
    /// Under which law.
    pub regime: Regime,
    /// The subject (none while unverified).
    pub subject_id: Option<String>,
    /// Where it stands.
    pub status: Status,
    /// Received.
    pub received_at: Option<SystemTime>,
    /// Verified.
    pub verified_at: Option<SystemTime>,
    /// The current deadline (extended when extended).
    pub due_at: Option<SystemTime>,
    /// Why the deadline was extended.
    pub extension_reason: Option<String>,
    /// Completed, denied or cancelled.
    pub closed_at: Option<SystemTime>,
    /// Why it was denied or cancelled.
    pub outcome_reason: Option<String>,
    /// Concerns a child (handled first).
    pub concerns_child: bool,
    /// Whether the deadline has passed while open.
    pub overdue: bool,
    /// Per-service tasks.
    pub tasks: Vec<Task>,
    /// Access and portability: until when the package can be downloaded.
    pub package_expires_at: Option<SystemTime>,
    /// Access and portability, once completed: the one-time token
    /// [`RightsClient::download_export`] needs. Given once, to the first caller that sees
    /// the request completed: keep it.
    pub download_token: Option<String>,
    /// For a refused request: the reasons, as the subject was told.
    pub refusal: Option<Refusal>,
    /// The messages sent to the subject about it, oldest first.
    pub messages: Vec<Message>,
}

impl SubjectRequest {
    fn from_pb(request: Option<pb::DataSubjectRequest>) -> Result<Self, PdmError> {
        let r = request.ok_or_else(|| missing("request"))?;
        Ok(Self {
            kind: r.kind(),
            regime: r.regime(),
            status: r.status(),
            request_id: r.request_id,
            subject_id: nonempty(r.subject_id),
            received_at: time(r.received_at),
            verified_at: time(r.verified_at),
            due_at: time(r.due_at),
            extension_reason: nonempty(r.extension_reason),
            closed_at: time(r.closed_at),
            outcome_reason: nonempty(r.outcome_reason),
            concerns_child: r.concerns_child,
            overdue: r.overdue,
            tasks: r
                .tasks
                .into_iter()
                .map(|t| Task {
                    service: t.service,
                    action: t.action,
                    status: t.status,
                    attempts: t.attempts,
                    done_at: time(t.done_at),
                })
                .collect(),
            package_expires_at: time(r.package_expires_at),
            download_token: nonempty(r.download_token),
            refusal: r.refusal.map(|f| Refusal {
                reasons: f.reasons,
                right_to_complain: f.right_to_complain,
            }),
            messages: r
                .messages
                .into_iter()
                .map(|m| Message {
                    status: m.status(),
                    topic: m.topic,
                })
                .collect(),
        })
    }

    /// Whether the request has ended (completed, denied or cancelled).
    pub fn is_closed(&self) -> bool {
        matches!(
            self.status,
            Status::Completed | Status::Denied | Status::Cancelled
        )
    }
}

/// A complaint or a report of compromised data, as the reporter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    /// Its id.
    pub concern_id: String,
    /// What it is about.
    pub kind: ConcernKind,
    /// Where it stands.
    pub status: ConcernStatus,
    /// When it was received.
    pub received_at: Option<SystemTime>,
    /// When the privacy team owes an answer (a month; 72 hours for a compromise).
    pub due_at: Option<SystemTime>,
    /// Where the reporter may complain if unsatisfied.
    pub right_to_complain: String,
}

/// A report of a child's data, as the reporter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildReport {
    /// Its id.
    pub report_id: String,
    /// Where it stands.
    pub status: ChildReportStatus,
    /// When it was received.
    pub received_at: Option<SystemTime>,
}

/// A report of a child's data to make.
#[derive(Debug, Clone, Default)]
pub struct NewChildReport {
    /// The account concerned by subject id (or give `email`).
    pub subject_id: Option<String>,
    /// The account concerned by its email address (or give `subject_id`).
    pub email: Option<String>,
    /// How to reach the reporter: an email address.
    pub reporter_contact: String,
    /// What the reporter says (at most 1,000 characters).
    pub notes: String,
}

/// A downloaded access or portability package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Content type of the package (JSON, schema `pdm.export.v1`).
    pub content_type: String,
    /// The package.
    pub bytes: Vec<u8>,
}

/// A request's progress from [`RightsClient::watch`]: the request after each change,
/// until it ends.
#[derive(Debug)]
pub struct RequestUpdates {
    inner: Streaming<pb::WatchRequestResponse>,
}

impl Stream for RequestUpdates {
    type Item = Result<SubjectRequest, PdmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|answer| {
                answer
                    .map_err(PdmError::from)
                    .and_then(|a| SubjectRequest::from_pb(a.request))
            })
        })
    }
}

/// The rights service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RightsClient {
    stub: Stub<RightsServiceClient<Channel>>,
}

impl RightsClient {
    /// Calls over `channel`, each within `timeout` (retries included).
    pub fn new(channel: Channel, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            stub: Stub::new(RightsServiceClient::new(channel), timeout, retry),
        }
    }

    /// Records a request and, when its credential checks out, starts it. Idempotent by
    /// its client reference (made for the call when none is given): retried like a read.
    pub async fn submit(&self, request: &NewRequest) -> Result<SubjectRequest, PdmError> {
        let message = pb::SubmitRequestRequest {
            kind: request.kind as i32,
            regime: request.regime as i32,
            subject_id: request.subject_id.clone().unwrap_or_default(),
            credential: request.credential.as_ref().map(credential),
            purpose: request.purpose.clone().unwrap_or_default(),
            rectifications: request
                .rectifications
                .iter()
                .map(|(field, value)| pb::Rectification {
                    field: field.clone(),
                    value: value.clone(),
                })
                .collect(),
            concerns_child: request.concerns_child,
            notes: request.notes.clone(),
            client_reference: request.client_reference.clone().unwrap_or_else(new_key),
            received_at: None,
            deletion_reason: String::new(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.submit_request(r).await
            })
            .await?;
        SubjectRequest::from_pb(r.request)
    }

    /// Supplies the credential of a request waiting for verification. The answer is the
    /// request, still waiting when the credential failed. Only a request still waiting is
    /// verified and a repeat returns it as it stands, so the call is retried like a read
    /// (as the Python and TypeScript clients do).
    pub async fn verify(
        &self,
        request_id: &str,
        subject_id: Option<&str>,
        proof: &Credential,
    ) -> Result<SubjectRequest, PdmError> {
        let message = pb::VerifyRequestRequest {
            request_id: request_id.to_owned(),
            subject_id: subject_id.unwrap_or_default().to_owned(),
            credential: Some(credential(proof)),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.verify_request(r).await
            })
            .await?;
        SubjectRequest::from_pb(r.request)
    }

    /// A request with its per-service status; `session_token` lets a client other than
    /// the submitting one see the request of the person signed in.
    pub async fn get(
        &self,
        request_id: &str,
        session_token: Option<&str>,
    ) -> Result<SubjectRequest, PdmError> {
        let message = pb::GetRequestRequest {
            request_id: request_id.to_owned(),
            session_token: session_token.unwrap_or_default().to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_request(r).await
            })
            .await?;
        SubjectRequest::from_pb(r.request)
    }

    /// The request after each change until it ends (no deadline, no retry: open it again
    /// to resume; the first item is the request as it stands).
    pub async fn watch(
        &self,
        request_id: &str,
        session_token: Option<&str>,
    ) -> Result<RequestUpdates, PdmError> {
        let message = pb::WatchRequestRequest {
            request_id: request_id.to_owned(),
            session_token: session_token.unwrap_or_default().to_owned(),
        };
        let inner = self
            .stub
            .open(message, |mut c, r| async move { c.watch_request(r).await })
            .await?;
        Ok(RequestUpdates { inner })
    }

    /// Downloads the package of a completed access or portability request with its
    /// one-time `download_token` (a complete download uses it up), held in memory.
    pub async fn download_export(
        &self,
        request_id: &str,
        download_token: &str,
        session_token: Option<&str>,
    ) -> Result<Export, PdmError> {
        let message = pb::DownloadExportRequest {
            request_id: request_id.to_owned(),
            download_token: download_token.to_owned(),
            session_token: session_token.unwrap_or_default().to_owned(),
        };
        let mut chunks = self
            .stub
            .open(
                message,
                |mut c, r| async move { c.download_export(r).await },
            )
            .await?;
        let mut export = Export {
            content_type: String::new(),
            bytes: Vec::new(),
        };
        while let Some(chunk) = chunks.message().await? {
            if export.content_type.is_empty() {
                export.content_type = chunk.content_type;
            }
            export.bytes.extend_from_slice(&chunk.chunk);
        }
        Ok(export)
    }

    /// Files a privacy complaint or a report of compromised data (no idempotency key:
    /// not retried after UNAVAILABLE).
    pub async fn report_concern(
        &self,
        kind: ConcernKind,
        contact_email: &str,
        description: &str,
        subject_id: Option<&str>,
    ) -> Result<Concern, PdmError> {
        let message = pb::ReportConcernRequest {
            kind: kind as i32,
            contact_email: contact_email.to_owned(),
            description: description.to_owned(),
            subject_id: subject_id.unwrap_or_default().to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.report_concern(r).await
            })
            .await?;
        let c = r.concern.ok_or_else(|| missing("concern"))?;
        Ok(Concern {
            kind: c.kind(),
            status: c.status(),
            concern_id: c.concern_id,
            received_at: time(c.received_at),
            due_at: time(c.due_at),
            right_to_complain: c.right_to_complain,
        })
    }

    /// Reports that a child's data is held; nothing is erased until the privacy team
    /// confirms (no idempotency key: not retried after UNAVAILABLE).
    pub async fn report_child(&self, report: &NewChildReport) -> Result<ChildReport, PdmError> {
        let message = pb::ReportChildRequest {
            subject_id: report.subject_id.clone().unwrap_or_default(),
            email: report.email.clone().unwrap_or_default(),
            reporter_contact: report.reporter_contact.clone(),
            notes: report.notes.clone(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.report_child(r).await
            })
            .await?;
        let c = r.report.ok_or_else(|| missing("report"))?;
        Ok(ChildReport {
            status: c.status(),
            report_id: c.report_id,
            received_at: time(c.received_at),
        })
    }
}
