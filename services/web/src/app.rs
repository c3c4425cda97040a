//! The router, its state and the guard every request passes: the session is looked up,
//! every POST must carry its CSRF token, every response gets the security headers.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use askama::Template;
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use pdm_proto::identity::v1::{GetAccountRequest, ValidateSessionRequest};
use pdm_runtime::SharedClock;
use tonic::Code;

use crate::{
    mesh::Mesh,
    pages,
    security::{self, CONSOLE_COOKIE, CSRF_COOKIE, SESSION_COOKIE, SignInLimiter},
    settings::WebSettings,
    store::{
        Session, Sessions,
        operators::{OperatorSession, Operators},
    },
    views::{Chrome, ProblemPage},
};

/// Operator password checks run at once; more wait their turn.
const HASHES_AT_ONCE: usize = 2;

/// Largest form body read (the forms are small).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The state's contents.
pub struct Inner {
    /// The `[web]` settings.
    pub settings: WebSettings,
    /// Server-side sessions.
    pub sessions: Sessions,
    /// gRPC clients.
    pub mesh: Mesh,
    /// Sign-in attempts per address.
    pub limiter: SignInLimiter,
    /// The clock sessions expire by.
    pub clock: SharedClock,
    /// Seals the data packages kept until they expire (keys from the KEK).
    pub keyring: pdm_crypto::Keyring,
    /// The console's operators and their sessions.
    pub operators: Operators,
    /// Password checks at once (argon2id: 19 MiB and tens of milliseconds each).
    pub hashing: tokio::sync::Semaphore,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state of one web front.
    pub fn new(
        settings: WebSettings,
        sessions: Sessions,
        mesh: Mesh,
        clock: SharedClock,
        keyring: pdm_crypto::Keyring,
        operators: Operators,
    ) -> Self {
        let limiter = SignInLimiter::new(
            settings.sign_in_attempts,
            Duration::from_secs(u64::from(settings.sign_in_window_secs)),
        );
        Self(Arc::new(Inner {
            settings,
            sessions,
            mesh,
            limiter,
            clock,
            keyring,
            operators,
            hashing: tokio::sync::Semaphore::new(HASHES_AT_ONCE),
        }))
    }

    /// A `Set-Cookie` value with this front's `Secure` choice.
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> String {
        security::set_cookie(name, value, self.settings.secure_cookies, max_age)
    }
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(pages::healthz))
        .route("/static/style.css", get(pages::stylesheet))
        .route(
            "/sign-in",
            get(pages::auth::sign_in_form).post(pages::auth::sign_in),
        )
        .route("/sign-out", post(pages::auth::sign_out))
        .route("/account", get(pages::account::settings))
        .route(
            "/account/delete",
            get(pages::account::delete_start).post(pages::account::delete_reason),
        )
        .route(
            "/account/delete/confirm",
            post(pages::account::delete_confirm),
        )
        .route("/account/deleted", get(pages::account::deleted))
        .route(
            "/profile",
            get(pages::profile::show).post(pages::profile::update),
        )
        .route(
            "/privacy",
            get(pages::privacy::show).post(pages::privacy::choose),
        )
        .route("/privacy/history", get(pages::privacy::history))
        .route("/privacy/do-not-sell", post(pages::privacy::do_not_sell))
        .route(
            "/messages",
            get(pages::messages::show).post(pages::messages::choose),
        )
        .route("/requests", get(pages::requests::list))
        .route("/requests/access", post(pages::requests::access))
        .route("/requests/{id}", get(pages::requests::show))
        .route("/requests/{id}/package", get(pages::requests::package))
        .route(
            "/requests/{id}/package.json",
            get(pages::requests::package_json),
        )
        .merge(pages::console::routes())
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Who is asking: their session if signed in, their address, their GPC signal.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// The live session, if any.
    pub session: Option<Session>,
    /// The client address (the sign-in rate limit's key).
    pub peer: Option<SocketAddr>,
    /// Whether the browser sends `Sec-GPC: 1`.
    pub gpc: bool,
    /// On the console's pages: the operator's live session, if any.
    pub operator: Option<OperatorSession>,
}

/// Looks the session up, checks the CSRF token of every POST, adds the headers.
async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = guarded(app, request, next).await;
    security::add_headers(response.headers_mut());
    response
}

async fn guarded(app: AppState, mut request: Request, next: Next) -> Response {
    let now = app.clock.now();
    // The console's pages know only operators' sessions (their own cookie); the people's
    // pages only people's.
    let console = pages::console::is_console(request.uri().path());
    let operator = match security::cookie(request.headers(), CONSOLE_COOKIE) {
        Some(token) if console => {
            match app.operators.touch(&security::sha256_hex(token), now).await {
                Ok(operator) => operator,
                Err(err) => {
                    tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "operator sessions unavailable");
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The service is unavailable. Please try again in a moment.",
                    );
                }
            }
        }
        _ => None,
    };
    let session = match security::cookie(request.headers(), SESSION_COOKIE) {
        _ if console => None,
        Some(token) => match app.sessions.touch(&security::sha256_hex(token), now).await {
            Ok(session) => session,
            Err(err) => {
                tracing::warn!(error = %pdm_runtime::error::db_error_kind(&err), "sessions table unavailable");
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is unavailable. Please try again in a moment.",
                );
            }
        },
        None => None,
    };
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return problem(StatusCode::PAYLOAD_TOO_LARGE, "That form is too large.");
        };
        let expected = match (&session, &operator) {
            (Some(session), _) => Some(session.csrf.as_str()),
            (None, Some(operator)) => Some(operator.csrf.as_str()),
            (None, None) => security::cookie(&parts.headers, CSRF_COOKIE),
        };
        let sent = security::form_csrf(&bytes);
        let valid = matches!((expected, sent.as_deref()), (Some(e), Some(s)) if !e.is_empty() && security::same(e, s));
        if !valid {
            tracing::info!(
                path = parts.uri.path(),
                "form refused: missing or wrong csrf token"
            );
            return problem(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            );
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let gpc = security::gpc(request.headers());
    request.extensions_mut().insert(Visitor {
        session,
        peer,
        gpc,
        operator,
    });
    next.run(request).await
}

/// A page naming a problem, with its status.
pub fn problem(status: StatusCode, message: &str) -> Response {
    let page = ProblemPage {
        chrome: Chrome::anonymous(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: message.to_owned(),
    };
    (status, render(&page)).into_response()
}

/// A template as an HTML response (500 if it cannot be rendered).
pub fn render<T: Template>(template: &T) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The page for a gRPC failure that is no fault of the visitor's.
pub fn unavailable(status: &tonic::Status) -> Response {
    tracing::warn!(code = ?status.code(), "a mesh call failed");
    match status.code() {
        Code::ResourceExhausted => problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Please wait a little and try again.",
        ),
        _ => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable. Please try again in a moment.",
        ),
    }
}

/// A redirect that ends the session's cookie (signed out, expired, deleted).
pub fn end_session(app: &AppState, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&app.cookie(SESSION_COOKIE, "", Some(0))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// === impl SignedIn ===

/// A signed-in person whose identity session is still valid, with their name for the
/// page header. Anyone else is sent to the sign-in page.
#[derive(Debug)]
pub struct SignedIn {
    /// The web session.
    pub session: Session,
    /// The header's name and sign-out form.
    pub chrome: Chrome,
    /// Whether the browser sends a GPC signal.
    pub gpc: bool,
}

impl SignedIn {
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.session.subject_id
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let Some(visitor) = parts.extensions.get::<Visitor>().cloned() else {
            return Err(Redirect::to("/sign-in").into_response());
        };
        let Some(session) = visitor.session else {
            return Err(Redirect::to("/sign-in").into_response());
        };
        let valid = app
            .mesh
            .identity
            .clone()
            .validate_session(ValidateSessionRequest {
                session_token: session.identity_token.clone(),
            })
            .await;
        match valid {
            Ok(answer) if answer.get_ref().subject_id == session.subject_id => {}
            Err(status) if !matches!(status.code(), Code::Unauthenticated | Code::NotFound) => {
                return Err(unavailable(&status));
            }
            // Expired or revoked at identity, or another subject's: the session ends.
            Ok(_) | Err(_) => {
                let _ = app.sessions.delete(&session.key).await;
                return Err(end_session(app, "/sign-in"));
            }
        }
        let account = app
            .mesh
            .identity
            .clone()
            .get_account(GetAccountRequest {
                subject_id: session.subject_id.clone(),
            })
            .await;
        let name = match account {
            Ok(answer) => answer
                .into_inner()
                .account
                .map(|a| format!("{} {}", a.first_name, a.last_name))
                .unwrap_or_default(),
            Err(status) if status.code() == Code::NotFound => {
                let _ = app.sessions.delete(&session.key).await;
                return Err(end_session(app, "/sign-in"));
            }
            Err(status) => return Err(unavailable(&status)),
        };
        Ok(Self {
            chrome: Chrome {
                name: Some(name),
                csrf: session.csrf.clone(),
            },
            session,
            gpc: visitor.gpc,
        })
    }
}
