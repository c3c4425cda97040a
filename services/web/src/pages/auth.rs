//! Sign in and sign out: identity's Authenticate makes the session the web keeps.

use std::time::Instant;

use axum::{
    Extension, Form,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::identity::v1::AuthenticateRequest;
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, Visitor, end_session, problem, render, unavailable},
    security::{self, CSRF_COOKIE, SESSION_COOKIE},
    views::{Chrome, SignInPage},
};

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `GET /sign-in`: the form, with a fresh CSRF cookie unless one is there.
pub async fn sign_in_form(
    Extension(visitor): Extension<Visitor>,
    headers: axum::http::HeaderMap,
    State(app): State<AppState>,
) -> Response {
    if visitor.session.is_some() {
        return Redirect::to("/account").into_response();
    }
    let csrf = match security::cookie(&headers, CSRF_COOKIE) {
        Some(token) if token.len() >= 32 => token.to_owned(),
        _ => match security::random_token() {
            Ok(token) => token,
            Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong."),
        },
    };
    form(&app, csrf, String::new(), None, StatusCode::OK)
}

fn form(
    app: &AppState,
    csrf: String,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let cookie = app.cookie(CSRF_COOKIE, &csrf, None);
    let page = SignInPage {
        chrome: Chrome::anonymous(),
        csrf,
        email,
        error,
    };
    let mut response = (status, render(&page)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /sign-in`: Authenticate, then a new server-side session.
pub async fn sign_in(
    State(app): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    headers: axum::http::HeaderMap,
    Form(input): Form<SignInForm>,
) -> Response {
    // The guard checked the CSRF cookie against the form: it is there.
    let csrf = security::cookie(&headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if let Some(peer) = visitor.peer
        && let Err(wait) = app.limiter.attempt(peer.ip(), Instant::now())
    {
        tracing::info!("sign-in rate limited");
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Please wait a few minutes and try again.",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let answer = app
        .mesh
        .identity
        .clone()
        .authenticate(AuthenticateRequest {
            email: input.email.clone(),
            password: input.password,
        })
        .await;
    let session = match answer {
        Ok(answer) => answer.into_inner(),
        Err(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::NotFound | Code::InvalidArgument
            ) =>
        {
            return form(
                &app,
                csrf,
                input.email,
                Some("The email address or the password is not right.".to_owned()),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(status) => return unavailable(&status),
    };
    let (Ok(token), Ok(form_token)) = (security::random_token(), security::random_token()) else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    let ends_by = session
        .expires_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0));
    let now = app.clock.now();
    if let Err(err) = app
        .sessions
        .create(
            &security::sha256_hex(&token),
            &session.subject_id,
            &session.session_token,
            &form_token,
            ends_by,
            now,
        )
        .await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not store a session");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        );
    }
    if visitor.gpc {
        super::honour_gpc(&app, &session.subject_id).await;
    }
    tracing::info!("signed in");
    let mut response = Redirect::to("/account").into_response();
    for cookie in [
        app.cookie(SESSION_COOKIE, &token, None),
        app.cookie(CSRF_COOKIE, "", Some(0)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /sign-out`: the session is deleted.
pub async fn sign_out(
    State(app): State<AppState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if let Some(session) = &visitor.session
        && let Err(err) = app.sessions.delete(&session.key).await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not delete a session");
    }
    end_session(&app, "/sign-in")
}
