//! The handlers, one file per page group.

pub mod account;
pub mod auth;
pub mod console;
pub mod messages;
pub mod privacy;
pub mod profile;
pub mod requests;

use axum::{
    Extension,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::consent::v1::{GetConsentsRequest, SetDoNotSellRequest, Source};
use tonic_types::StatusExt as _;

use crate::{
    app::{AppState, Visitor, problem},
    views::FieldErrors,
};

/// The stylesheet (the CSP allows styles from this site only).
const STYLE: &str = include_str!("../../static/style.css");

/// Who records a person's own choice in the consent ledger.
pub const ACTOR: &str = "subject (privacy centre)";

/// `/`: the account settings when signed in, the sign-in page otherwise.
pub async fn home(Extension(visitor): Extension<Visitor>) -> Redirect {
    if visitor.session.is_some() {
        Redirect::to("/account")
    } else {
        Redirect::to("/sign-in")
    }
}

/// `/healthz`: 200 when the sessions table answers.
pub async fn healthz(State(app): State<AppState>) -> Response {
    if app.sessions.ping().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// `/static/style.css`.
pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// Anything else.
pub async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "There is no such page.")
}

/// The field violations of an INVALID_ARGUMENT, by field.
pub fn field_errors(status: &tonic::Status) -> FieldErrors {
    let details = status.get_error_details();
    FieldErrors(
        details
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Records a browser's Global Privacy Control signal as the person's "do not sell or
/// share" choice (source GPC), unless it is already their choice. Best effort: a failure
/// is logged and the page goes on (the next page asks again).
pub async fn honour_gpc(app: &AppState, subject: &str) -> bool {
    let mut consent = app.mesh.consent.clone();
    let state = consent
        .get_consents(GetConsentsRequest {
            subject_id: subject.to_owned(),
        })
        .await;
    match state {
        Ok(state) if state.get_ref().do_not_sell => true,
        Ok(_) => match consent
            .set_do_not_sell(SetDoNotSellRequest {
                subject_id: subject.to_owned(),
                do_not_sell: true,
                source: Source::Gpc as i32,
                actor: "browser (Global Privacy Control)".to_owned(),
            })
            .await
        {
            Ok(_) => {
                tracing::info!("recorded a global privacy control signal");
                true
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "could not record a global privacy control signal");
                false
            }
        },
        Err(status) => {
            tracing::warn!(code = ?status.code(), "could not read consents to honour gpc");
            false
        }
    }
}
