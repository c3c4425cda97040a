//! The privacy team's console under `/console`: operators sign in with their own account
//! (argon2id password and a TOTP code), in a session of their own (cookie `pdm_console`,
//! apart from the people's), and every call the console makes to the mesh names them
//! (`x-pdm-actor`), so the access trail records `web/operator:<name>`.
//!
//! Pages: the request queue (overdue first, days left), a request (tasks per service,
//! receipts, verify with a reference, extend with a reason), the yearly report; the
//! transfers register (mechanisms, those expiring); retention (policies, holds, purge runs,
//! a dry run started and watched); consent counts per purpose (counts, never people);
//! each service's access trail verified. No script: forms and links only.

pub mod auth;
pub mod incidents;
pub mod queue;
pub mod registers;
pub mod views;

use axum::{
    Router,
    extract::FromRequestParts,
    http::request::Parts,
    response::{IntoResponse as _, Redirect, Response},
    routing::{get, post},
};

use crate::{app::AppState, store::operators::OperatorSession};

/// Whether `path` is one of the console's (its own sessions and cookie).
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(queue::list))
        .route(
            "/console/sign-in",
            get(auth::sign_in_form).post(auth::sign_in),
        )
        .route("/console/sign-out", post(auth::sign_out))
        .route("/console/requests/{id}", get(queue::show))
        .route("/console/requests/{id}/verify", post(queue::verify))
        .route("/console/requests/{id}/extend", post(queue::extend))
        .route("/console/report", get(queue::report))
        .route("/console/transfers", get(registers::transfers))
        .route("/console/retention", get(registers::retention))
        .route("/console/retention/dry-run", post(registers::dry_run))
        .route("/console/retention/runs/{id}", get(registers::run))
        .route("/console/consent", get(registers::consent))
        .route("/console/trails", get(registers::trails))
        .route("/console/incidents", get(incidents::overdue))
}

/// A signed-in operator; anyone else (a person signed in on the people's pages too) is
/// sent to the console's sign-in.
#[derive(Debug)]
pub struct Operator {
    /// The session.
    pub session: OperatorSession,
}

impl Operator {
    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.session.operator
    }

    /// The header of the console's pages.
    pub fn chrome(&self) -> views::ConsoleChrome {
        views::ConsoleChrome {
            operator: Some(self.session.operator.clone()),
            csrf: self.session.csrf.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _app: &AppState) -> Result<Self, Response> {
        match parts
            .extensions
            .get::<crate::app::Visitor>()
            .and_then(|v| v.operator.clone())
        {
            Some(session) => Ok(Self { session }),
            None => Err(Redirect::to("/console/sign-in").into_response()),
        }
    }
}

/// A protobuf time as `YYYY-MM-DD HH:MM` (UTC), empty when unset.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A protobuf time as `YYYY-MM-DD`, empty when unset.
pub fn day(t: Option<&prost_types::Timestamp>) -> String {
    time(t).split(' ').next().unwrap_or_default().to_owned()
}
