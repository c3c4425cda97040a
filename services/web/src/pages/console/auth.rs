//! Operators sign in with their name, password (argon2id) and a TOTP code; a code is
//! used once. The people's sign-in limit applies per address; every refusal answers the
//! same, whichever part was wrong.

use std::{sync::OnceLock, time::Instant};

use axum::{
    Extension, Form,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Redirect, Response},
};
use serde::Deserialize;

use super::views::{ConsoleChrome, SignInPage};
use crate::{
    app::{AppState, Visitor, problem, render},
    domain::{password, totp},
    security::{self, CONSOLE_COOKIE, CSRF_COOKIE},
    store::operators::TOTP_FIELD,
};

/// The refusal, the same for every cause.
const REFUSED: &str = "The name, the password or the code is not right.";

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// `GET /console/sign-in`.
pub async fn sign_in_form(
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    State(app): State<AppState>,
) -> Response {
    if visitor.operator.is_some() {
        return Redirect::to("/console").into_response();
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
    name: String,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let cookie = app.cookie(CSRF_COOKIE, &csrf, None);
    let page = SignInPage {
        chrome: ConsoleChrome::default(),
        csrf,
        name,
        error: error.map(str::to_owned),
    };
    let mut response = (status, render(&page)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A hash no password matches, checked for unknown names so that they take as long.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut seed = [0u8; 16];
        let _ = getrandom::fill(&mut seed);
        password::hash(&format!("{seed:?}")).unwrap_or_default()
    })
}

/// Checks `password` against `phc` on the blocking pool, a few at a time.
async fn password_matches(app: &AppState, password: String, phc: Option<String>) -> bool {
    let Ok(_permit) = app.hashing.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let phc = phc.unwrap_or_else(|| decoy().to_owned());
        password.chars().count() <= password::MAX_CHARS && password::verify(&password, &phc)
    })
    .await
    .unwrap_or(false)
}

/// `POST /console/sign-in`: password, then the code (once), then a console session.
pub async fn sign_in(
    State(app): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    Form(input): Form<SignInForm>,
) -> Response {
    let csrf = security::cookie(&headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if let Some(peer) = visitor.peer
        && let Err(wait) = app.limiter.attempt(peer.ip(), Instant::now())
    {
        tracing::info!("operator sign-in rate limited");
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Please wait a few minutes and try again.",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let refused = |why: &str| {
        tracing::info!(why, "operator sign-in refused");
        form(
            &app,
            csrf.clone(),
            input.name.clone(),
            Some(REFUSED),
            StatusCode::UNAUTHORIZED,
        )
    };
    let account = if pdm_tls::identity::valid_operator(&input.name) {
        match app.operators.get(&input.name).await {
            Ok(account) => account.filter(|a| !a.disabled),
            Err(err) => {
                tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "operators table unavailable");
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is unavailable. Please try again in a moment.",
                );
            }
        }
    } else {
        None
    };
    let phc = account.as_ref().map(|a| a.password_hash.clone());
    let matches = password_matches(&app, input.password.clone(), phc).await;
    let Some(account) = account.filter(|_| matches) else {
        return refused("name or password");
    };
    let secret = app
        .keyring
        .unwrap_key(&format!("operator:{}", account.name), &account.wrapped_key)
        .and_then(|key| key.open(TOTP_FIELD, &account.totp_sealed));
    let Ok(secret) = secret else {
        tracing::error!("an operator's totp secret does not open (another kek?)");
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    let now = app.clock.now();
    let Some(step) = totp::verify(
        &secret,
        &input.code,
        now.timestamp(),
        account.last_totp_step,
    ) else {
        return refused("code");
    };
    match app.operators.use_step(&account.name, step).await {
        Ok(true) => {}
        Ok(false) => return refused("code used already"),
        Err(err) => {
            tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "operators table unavailable");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable. Please try again in a moment.",
            );
        }
    }
    let (Ok(token), Ok(form_token)) = (security::random_token(), security::random_token()) else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    if let Err(err) = app
        .operators
        .create_session(
            &security::sha256_hex(&token),
            &account.name,
            &form_token,
            now,
        )
        .await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not store an operator session");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        );
    }
    tracing::info!("operator signed in");
    let mut response = Redirect::to("/console").into_response();
    for cookie in [
        app.cookie(CONSOLE_COOKIE, &token, None),
        app.cookie(CSRF_COOKIE, "", Some(0)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(app): State<AppState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if let Some(session) = &visitor.operator
        && let Err(err) = app.operators.end(&session.key).await
    {
        tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "could not end an operator session");
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    if let Ok(value) = HeaderValue::from_str(&app.cookie(CONSOLE_COOKIE, "", Some(0))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
