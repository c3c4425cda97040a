//! Account settings and the deletion path: Account settings → Delete account → a reason
//! → the password again and a final confirmation → the confirmation page.

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use pdm_proto::identity::v1::{DeleteAccountRequest, DeletionReason};
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, SignedIn, end_session, problem, render, unavailable},
    security,
    views::{AccountPage, Chrome, DeleteConfirmPage, DeleteReasonPage, DeletedPage},
};

/// The reasons offered, in order, with their labels.
const REASONS: [(DeletionReason, &str); 5] = [
    (
        DeletionReason::NoLongerNeeded,
        "I no longer need the service",
    ),
    (DeletionReason::PrivacyConcerns, "I have privacy concerns"),
    (DeletionReason::TooExpensive, "It is too expensive"),
    (
        DeletionReason::SwitchingService,
        "I am moving to another service",
    ),
    (DeletionReason::Other, "Another reason"),
];

fn reason(value: &str) -> Option<(DeletionReason, &'static str)> {
    REASONS
        .iter()
        .find(|(r, _)| r.as_str_name() == value)
        .copied()
}

/// `GET /account`: account settings, where the name at the top right leads.
pub async fn settings(who: SignedIn) -> Response {
    render(&AccountPage { chrome: who.chrome })
}

/// `GET /account/delete`: step 1, the reason.
pub async fn delete_start(who: SignedIn) -> Response {
    reason_page(who.chrome, None, StatusCode::OK)
}

fn reason_page(chrome: Chrome, error: Option<&str>, status: StatusCode) -> Response {
    let page = DeleteReasonPage {
        chrome,
        reasons: REASONS
            .iter()
            .map(|(r, label)| (r.as_str_name().to_owned(), (*label).to_owned()))
            .collect(),
        error: error.map(str::to_owned),
    };
    (status, render(&page)).into_response()
}

/// The reason form.
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

/// `POST /account/delete`: the reason chosen, step 2.
pub async fn delete_reason(who: SignedIn, Form(input): Form<ReasonForm>) -> Response {
    let Some((chosen, label)) = reason(&input.reason) else {
        return reason_page(
            who.chrome,
            Some("Choose a reason to continue."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let Ok(token) = security::random_token() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    confirm_page(
        who.chrome,
        chosen,
        label,
        format!("web-{token}"),
        None,
        StatusCode::OK,
    )
}

fn confirm_page(
    chrome: Chrome,
    reason: DeletionReason,
    label: &str,
    request_id: String,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = DeleteConfirmPage {
        chrome,
        reason: reason.as_str_name().to_owned(),
        reason_label: label.to_owned(),
        request_id,
        error: error.map(str::to_owned),
    };
    (status, render(&page)).into_response()
}

/// The final form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    request_id: String,
}

/// `POST /account/delete/confirm`: DeleteAccount with the password again; then every
/// session of the person ends and the confirmation page follows.
pub async fn delete_confirm(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<ConfirmForm>,
) -> Response {
    let Some((chosen, label)) = reason(&input.reason) else {
        return reason_page(
            who.chrome,
            Some("Choose a reason to continue."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let request_id = if pdm_runtime::ids::check_request_id(&input.request_id).is_ok() {
        input.request_id.clone()
    } else {
        match security::random_token() {
            Ok(token) => format!("web-{token}"),
            Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong."),
        }
    };
    if input.confirm != "yes" {
        return confirm_page(
            who.chrome,
            chosen,
            label,
            request_id,
            Some("Tick the box to confirm that you want your account deleted."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if input.password.is_empty() {
        return confirm_page(
            who.chrome,
            chosen,
            label,
            request_id,
            Some("Enter your password."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let answer = app
        .mesh
        .identity
        .clone()
        .delete_account(DeleteAccountRequest {
            subject_id: who.subject().to_owned(),
            password: input.password,
            reason: chosen as i32,
            request_id: request_id.clone(),
        })
        .await;
    match answer {
        Ok(_) => {}
        Err(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ) =>
        {
            // The refused request's id is spent: with the rights service in the mesh it
            // names the erasure request rights withdrew, which a retry under the same id
            // would be answered from (refused again, whatever the password). The next
            // attempt is a new request.
            let Ok(token) = security::random_token() else {
                return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
            };
            return confirm_page(
                who.chrome,
                chosen,
                label,
                format!("web-{token}"),
                Some("That password is not right."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(status) => return unavailable(&status),
    }
    if let Err(err) = app.sessions.delete_subject(who.subject()).await {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not end the sessions of a deleted account");
    }
    if let Err(err) = app.sessions.delete_requests_of(who.subject()).await {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not forget the requests of a deleted account");
    }
    tracing::info!("account deleted through the privacy centre");
    end_session(&app, "/account/deleted")
}

/// `GET /account/deleted`: the confirmation page (the session is gone by then).
pub async fn deleted() -> Response {
    render(&DeletedPage {
        chrome: Chrome::anonymous(),
    })
}
