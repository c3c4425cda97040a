//! Profile: the account as identity holds it, and its correction (rectification).

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use pdm_proto::{
    common::v1::Region,
    identity::v1::{Account, GetAccountRequest, UpdateProfileRequest},
};
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, SignedIn, render, unavailable},
    views::{FieldErrors, ProfilePage},
};

/// A region as people read it.
pub fn region_label(region: i32) -> &'static str {
    match Region::try_from(region).unwrap_or(Region::Unspecified) {
        Region::Eea => "European Economic Area",
        Region::Uk => "United Kingdom",
        Region::Ch => "Switzerland",
        Region::UsCa => "California, United States",
        Region::Us => "United States",
        Region::In => "India",
        Region::Other => "Elsewhere",
        Region::Unspecified => "not given",
    }
}

fn page(
    who: SignedIn,
    account: &Account,
    errors: FieldErrors,
    notice: Option<&str>,
) -> ProfilePage {
    ProfilePage {
        chrome: who.chrome,
        first_name: account.first_name.clone(),
        last_name: account.last_name.clone(),
        email: account.email.clone(),
        phone: account.phone.clone(),
        region: region_label(account.region).to_owned(),
        birth_date: account.birth_date.clone(),
        errors,
        notice: notice.map(str::to_owned),
    }
}

async fn account(app: &AppState, subject: &str) -> Result<Account, Response> {
    app.mesh
        .identity
        .clone()
        .get_account(GetAccountRequest {
            subject_id: subject.to_owned(),
        })
        .await
        .map_err(|status| unavailable(&status))?
        .into_inner()
        .account
        .ok_or_else(|| unavailable(&tonic::Status::internal("no account")))
}

/// `GET /profile`.
pub async fn show(State(app): State<AppState>, who: SignedIn) -> Response {
    match account(&app, who.subject()).await {
        Ok(account) => render(&page(who, &account, FieldErrors::default(), None)),
        Err(response) => response,
    }
}

/// The profile form.
#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

/// `POST /profile`: UpdateProfile with the fields that changed; each field identity
/// refuses is shown beside it.
pub async fn update(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<ProfileForm>,
) -> Response {
    let current = match account(&app, who.subject()).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let changed = |new: &str, old: &str| (new.trim() != old).then(|| new.trim().to_owned());
    let request = UpdateProfileRequest {
        subject_id: who.subject().to_owned(),
        first_name: changed(&input.first_name, &current.first_name),
        last_name: changed(&input.last_name, &current.last_name),
        email: changed(&input.email, &current.email),
        phone: changed(&input.phone, &current.phone),
        region: None,
        birth_date: None,
    };
    let nothing = request.first_name.is_none()
        && request.last_name.is_none()
        && request.email.is_none()
        && request.phone.is_none();
    if nothing {
        return render(&page(
            who,
            &current,
            FieldErrors::default(),
            Some("Nothing changed."),
        ));
    }
    match app.mesh.identity.clone().update_profile(request).await {
        Ok(answer) => {
            let account = answer.into_inner().account.unwrap_or(current);
            tracing::info!("profile corrected through the privacy centre");
            render(&page(
                who,
                &account,
                FieldErrors::default(),
                Some("Your details are saved."),
            ))
        }
        Err(status)
            if matches!(
                status.code(),
                Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition
            ) =>
        {
            let mut errors = super::field_errors(&status);
            if status.code() == Code::AlreadyExists {
                errors.0.push((
                    "email".to_owned(),
                    "Another account uses this email address.".to_owned(),
                ));
            } else if errors.is_empty() {
                errors.0.push((
                    "first_name".to_owned(),
                    "These details cannot be saved.".to_owned(),
                ));
            }
            // Show what was typed, so it can be corrected.
            let typed = Account {
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                phone: input.phone,
                ..current
            };
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&page(who, &typed, errors, None)),
            )
                .into_response()
        }
        Err(status) => unavailable(&status),
    }
}
