//! My requests: the data-subject requests the person made on these pages, each read from
//! the rights service with the person's own session (rights shows a request to a caller
//! holding its subject's session), with its status and deadline; "Download my data" files
//! an access request vouched for by that session.
//!
//! The rights service lists requests to the privacy team only, so the web keeps which
//! request ids each person made here (`web_requests`) and shows a person only theirs:
//! the id must be theirs in that table, and the request rights returns must be of the
//! session's subject.

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::{
    common::v1::Region,
    identity::v1::GetAccountRequest,
    rights::v1::{
        Credential, DataSubjectRequest, GetRequestRequest, Regime, RequestKind, Status,
        SubmitRequestRequest, credential,
    },
};
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, SignedIn, problem, render, unavailable},
    security,
    views::{RequestPage, RequestView, RequestsPage},
};

/// Requests shown on the list (the newest).
const MAX_LISTED: usize = 50;

fn kind_label(kind: i32) -> &'static str {
    match RequestKind::try_from(kind).unwrap_or(RequestKind::Unspecified) {
        RequestKind::Access => "A copy of your data",
        RequestKind::Portability => "Your data to take elsewhere",
        RequestKind::Rectification => "A correction",
        RequestKind::Erasure => "Deletion",
        RequestKind::Restriction => "A restriction of use",
        RequestKind::Objection => "An objection",
        RequestKind::CcpaKnow => "What we know about you",
        RequestKind::CcpaDelete => "Deletion",
        RequestKind::CcpaOptOut => "No selling or sharing",
        RequestKind::Unspecified => "A request",
    }
}

fn status_label(status: i32) -> &'static str {
    match Status::try_from(status).unwrap_or(Status::Unspecified) {
        Status::VerificationRequired => "waiting for you to confirm who you are",
        Status::InProgress => "in progress",
        Status::Completed => "done",
        Status::Denied => "refused",
        Status::Cancelled => "cancelled",
        Status::Unspecified => "unknown",
    }
}

fn task_label(status: &str) -> &'static str {
    match status {
        "done" => "finished",
        "running" => "working on it",
        "failed" => "trying again",
        _ => "waiting",
    }
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn view(r: &DataSubjectRequest) -> RequestView {
    let outcome = r
        .refusal
        .as_ref()
        .map(|f| f.reasons.join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| r.outcome_reason.clone());
    RequestView {
        id: r.request_id.clone(),
        kind: kind_label(r.kind).to_owned(),
        status: status_label(r.status).to_owned(),
        received: time(r.received_at.as_ref()),
        due: time(r.due_at.as_ref())
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned(),
        overdue: r.overdue,
        extension_reason: r.extension_reason.clone(),
        closed: time(r.closed_at.as_ref()),
        outcome,
        package_expires: time(r.package_expires_at.as_ref()),
    }
}

/// The regime a person's requests are made under, by their region: the CCPA in
/// California, the UK GDPR in the UK, the Swiss FADP in Switzerland, the EU GDPR
/// elsewhere (the policy's promises are the GDPR's).
fn regime(region: i32) -> Regime {
    match Region::try_from(region).unwrap_or(Region::Unspecified) {
        Region::Uk => Regime::UkGdpr,
        Region::Ch => Regime::Swiss,
        Region::UsCa => Regime::Ccpa,
        _ => Regime::Gdpr,
    }
}

/// GetRequest with the person's session; `None` when rights does not show it (or shows
/// another subject's: never on these pages). A download token rights gives is kept.
async fn fetch(
    app: &AppState,
    who: &SignedIn,
    id: &str,
) -> Result<Option<DataSubjectRequest>, tonic::Status> {
    let answer = app
        .mesh
        .rights
        .clone()
        .get_request(GetRequestRequest {
            request_id: id.to_owned(),
            session_token: who.session.identity_token.clone(),
        })
        .await;
    let request = match answer {
        Ok(answer) => answer.into_inner().request,
        Err(status) if status.code() == Code::NotFound => return Ok(None),
        Err(status) => return Err(status),
    };
    let Some(mut request) = request.filter(|r| r.subject_id == who.subject()) else {
        return Ok(None);
    };
    let token = std::mem::take(&mut request.download_token);
    if !token.is_empty()
        && let Err(err) = app.sessions.keep_download_token(id, &token).await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not keep a download token");
    }
    Ok(Some(request))
}

/// `GET /requests`.
pub async fn list(State(app): State<AppState>, who: SignedIn) -> Response {
    let ids = match app.sessions.requests_of(who.subject()).await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "requests table unavailable");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable. Please try again in a moment.",
            );
        }
    };
    let mut requests = Vec::new();
    for id in ids.iter().take(MAX_LISTED) {
        match fetch(&app, &who, id).await {
            Ok(Some(r)) => requests.push(view(&r)),
            Ok(None) => {}
            Err(status) => return unavailable(&status),
        }
    }
    let Ok(reference) = security::random_token() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    render(&RequestsPage {
        chrome: who.chrome,
        requests,
        reference,
    })
}

/// The "download my data" form.
#[derive(Deserialize)]
pub struct AccessForm {
    #[serde(default)]
    reference: String,
}

/// `POST /requests/access`: an access request for the signed-in person, vouched for by
/// their session, then its progress page.
pub async fn access(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<AccessForm>,
) -> Response {
    let account = app
        .mesh
        .identity
        .clone()
        .get_account(GetAccountRequest {
            subject_id: who.subject().to_owned(),
        })
        .await;
    let region = match account {
        Ok(answer) => answer.into_inner().account.map_or(0, |a| a.region),
        Err(status) => return unavailable(&status),
    };
    // The form's reference makes a double submission one request; an odd one is replaced.
    let reference = if (32..=128).contains(&input.reference.len())
        && input
            .reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        format!("web-{}", input.reference)
    } else {
        match security::random_token() {
            Ok(token) => format!("web-{token}"),
            Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong."),
        }
    };
    let answer = app
        .mesh
        .rights
        .clone()
        .submit_request(SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: regime(region) as i32,
            subject_id: who.subject().to_owned(),
            credential: Some(Credential {
                credential: Some(credential::Credential::SessionToken(
                    who.session.identity_token.clone(),
                )),
            }),
            client_reference: reference,
            ..Default::default()
        })
        .await;
    let request = match answer {
        Ok(answer) => answer.into_inner().request,
        Err(status) => return unavailable(&status),
    };
    let Some(request) = request else {
        return problem(StatusCode::BAD_GATEWAY, "Something went wrong.");
    };
    if let Err(err) = app
        .sessions
        .add_request(who.subject(), &request.request_id, app.clock.now())
        .await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not record a request");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        );
    }
    tracing::info!("access request made through the privacy centre");
    Redirect::to(&format!("/requests/{}", request.request_id)).into_response()
}

/// `GET /requests/{id}`: one of the person's requests and its progress; the page
/// refreshes itself while the request is moving (no script needed).
pub async fn show(State(app): State<AppState>, who: SignedIn, Path(id): Path<String>) -> Response {
    let not_found = || problem(StatusCode::NOT_FOUND, "There is no such request.");
    match app.sessions.own_request(who.subject(), &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        Err(err) => {
            tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "requests table unavailable");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable. Please try again in a moment.",
            );
        }
    }
    let request = match fetch(&app, &who, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(status) => return unavailable(&status),
    };
    let tasks: Vec<(String, String)> = request
        .tasks
        .iter()
        .map(|t| (t.service.clone(), task_label(&t.status).to_owned()))
        .collect();
    let done = request.tasks.iter().filter(|t| t.status == "done").count();
    let refresh = matches!(
        Status::try_from(request.status),
        Ok(Status::InProgress | Status::VerificationRequired)
    );
    render(&RequestPage {
        chrome: who.chrome,
        r: view(&request),
        tasks,
        done,
        refresh,
    })
}
