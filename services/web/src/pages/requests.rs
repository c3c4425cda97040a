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
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::{
    common::v1::Region,
    identity::v1::GetAccountRequest,
    rights::v1::{
        Credential, DataSubjectRequest, DownloadExportRequest, GetRequestRequest, Regime,
        RequestKind, Status, SubmitRequestRequest, credential,
    },
};
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, SignedIn, problem, render, unavailable},
    security,
    views::{PackagePage, RequestPage, RequestView, RequestsPage},
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
    // A form sent again answers the request it made, and once that is done rights hands
    // its one-time download token over in this answer: kept like GetRequest's.
    let kept = match app
        .sessions
        .add_request(who.subject(), &request.request_id, app.clock.now())
        .await
    {
        Ok(()) if !request.download_token.is_empty() => {
            app.sessions
                .keep_download_token(&request.request_id, &request.download_token)
                .await
        }
        other => other,
    };
    if let Err(err) = kept {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not record a request");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        );
    }
    tracing::info!("access request made through the privacy centre");
    Redirect::to(&format!("/requests/{}", request.request_id)).into_response()
}

/// `GET /requests/{id}`: one of the person's requests and its progress; while the request
/// is moving the page links to itself to check again (no script, no timed reload).
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
    let in_progress = matches!(
        Status::try_from(request.status),
        Ok(Status::InProgress | Status::VerificationRequired)
    );
    render(&RequestPage {
        chrome: who.chrome,
        r: view(&request),
        tasks,
        done,
        in_progress,
    })
}

/// Largest package accepted from rights (bytes).
const MAX_PACKAGE: usize = 64 * 1024 * 1024;

/// Field name the package is sealed under (bound into the ciphertext).
const SEAL_FIELD: &str = "web_packages.sealed";

/// The package of one of the person's completed access requests, as JSON bytes: the copy
/// the web keeps (sealed) until it expires, else downloaded from rights with the one-time
/// token it gave and kept. `Ok(None)` when there is none (not theirs, not ready, expired).
async fn package_bytes(
    app: &AppState,
    who: &SignedIn,
    id: &str,
) -> Result<Option<(Vec<u8>, DataSubjectRequest)>, Response> {
    let fail = |what: &str| {
        tracing::warn!(what, "a package could not be kept or opened");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        )
    };
    let now = app.clock.now();
    match app.sessions.own_request(who.subject(), id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(None),
        Err(_) => return Err(fail("requests table")),
    }
    let request = match fetch(app, who, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(status) => return Err(unavailable(&status)),
    };
    let expires = request.package_expires_at.as_ref().map_or(0, |t| t.seconds);
    if request.status != Status::Completed as i32 || expires <= now.timestamp() {
        return Ok(None);
    }
    match app.sessions.package(who.subject(), id, now).await {
        Ok(Some((wrapped, sealed))) => {
            let opened = app
                .keyring
                .unwrap_key(who.subject(), &wrapped)
                .and_then(|key| key.open(SEAL_FIELD, &sealed));
            return match opened {
                Ok(bytes) => Ok(Some((bytes, request))),
                Err(_) => Err(fail("open")),
            };
        }
        Ok(None) => {}
        Err(_) => return Err(fail("packages table")),
    }
    // Not kept yet: download it once with the token rights gave.
    let token = match app.sessions.own_request(who.subject(), id).await {
        Ok(Some(Some(token))) => token,
        Ok(_) => return Ok(None),
        Err(_) => return Err(fail("requests table")),
    };
    let stream = app
        .mesh
        .rights
        .clone()
        .download_export(DownloadExportRequest {
            request_id: id.to_owned(),
            download_token: token,
            session_token: who.session.identity_token.clone(),
        })
        .await;
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(status)
            if matches!(
                status.code(),
                Code::NotFound
                    | Code::FailedPrecondition
                    | Code::PermissionDenied
                    | Code::InvalidArgument
            ) =>
        {
            return Ok(None);
        }
        Err(status) => return Err(unavailable(&status)),
    };
    let mut bytes = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(piece)) => {
                bytes.extend_from_slice(&piece.chunk);
                if bytes.len() > MAX_PACKAGE {
                    return Err(fail("too large"));
                }
            }
            Ok(None) => break,
            Err(status) => return Err(unavailable(&status)),
        }
    }
    let Ok((key, wrapped)) = app.keyring.generate(who.subject()) else {
        return Err(fail("key"));
    };
    let Ok(sealed) = key.seal(SEAL_FIELD, &bytes) else {
        return Err(fail("seal"));
    };
    if app
        .sessions
        .keep_package(id, who.subject(), wrapped, sealed, expires)
        .await
        .is_err()
    {
        return Err(fail("packages table"));
    }
    tracing::info!("a data package downloaded from rights and kept sealed until it expires");
    Ok(Some((bytes, request)))
}

/// Every leaf of a JSON value with its place ("profile › email").
fn flatten(prefix: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
    let name = |key: &str| {
        let key = key.replace('_', " ");
        if prefix.is_empty() {
            key
        } else {
            format!("{prefix} › {key}")
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&name(k), v, rows);
            }
        }
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                rows.push((prefix.to_owned(), "none".to_owned()));
            }
            for (i, v) in items.iter().enumerate() {
                flatten(&name(&(i + 1).to_string()), v, rows);
            }
        }
        serde_json::Value::Null => rows.push((prefix.to_owned(), String::new())),
        serde_json::Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

/// `GET /requests/{id}/package`: the package as a page people read.
pub async fn package(
    State(app): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let (bytes, request) = match package_bytes(&app, &who, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "There is no such copy of your data, or it has expired.",
            );
        }
        Err(response) => return response,
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return problem(StatusCode::BAD_GATEWAY, "Something went wrong.");
    };
    let mut rows = Vec::new();
    flatten("", &json, &mut rows);
    render(&PackagePage {
        chrome: who.chrome,
        id,
        generated: json["generated_at"].as_str().unwrap_or_default().to_owned(),
        expires: time(request.package_expires_at.as_ref()),
        rows,
    })
}

/// `GET /requests/{id}/package.json`: the package as a file.
pub async fn package_json(
    State(app): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match package_bytes(&app, &who, &id).await {
        Ok(Some((bytes, _))) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"my-data.json\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "There is no such copy of your data, or it has expired.",
        ),
        Err(response) => response,
    }
}
