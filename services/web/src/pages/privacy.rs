//! Privacy choices: every purpose of consent's catalogue with its legal basis in the
//! person's region and its text; consent given or withdrawn per purpose (a grant records
//! the policy version and the SHA-256 of the exact text shown); "do not sell or share".

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{
        Channel, ConsentStatus, GetConsentHistoryRequest, GetConsentsRequest, GrantConsentRequest,
        LedgerEntry, LedgerEntryKind, ListPurposesRequest, Purpose, SetDoNotSellRequest, Source,
        WithdrawConsentRequest,
    },
};
use serde::Deserialize;
use tonic::Code;

use crate::{
    app::{AppState, SignedIn, problem, render, unavailable},
    security,
    views::{HistoryEntry, HistoryPage, PrivacyPage, PurposeView},
};

/// A legal basis as people read it.
pub fn basis_label(basis: i32) -> &'static str {
    match LegalBasis::try_from(basis).unwrap_or(LegalBasis::Unspecified) {
        LegalBasis::Consent => "your consent",
        LegalBasis::Contract => "our contract with you",
        LegalBasis::LegalObligation => "a legal obligation",
        LegalBasis::VitalInterests => "someone's vital interests",
        LegalBasis::PublicTask => "a task in the public interest",
        LegalBasis::LegitimateInterests => "our legitimate interests",
        LegalBasis::Unspecified => "not stated",
    }
}

fn status_label(status: i32) -> &'static str {
    match ConsentStatus::try_from(status).unwrap_or(ConsentStatus::Unspecified) {
        ConsentStatus::Granted => "consent given",
        ConsentStatus::Withdrawn => "consent withdrawn",
        ConsentStatus::NotGiven => "consent not given",
        ConsentStatus::NotRequired => "no consent needed",
        ConsentStatus::Unspecified => "unknown",
    }
}

/// "marketing_email" → "Marketing email".
fn title(key: &str) -> String {
    let words = key.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The SHA-256 of the text a purpose is shown with: its description.
pub fn text_hash(purpose: &Purpose) -> String {
    security::sha256_hex(&purpose.description)
}

async fn page(app: &AppState, who: SignedIn, notice: Option<&str>, status: StatusCode) -> Response {
    let gpc = who.gpc && super::honour_gpc(app, who.subject()).await;
    let mut consent = app.mesh.consent.clone();
    let catalogue = match consent.list_purposes(ListPurposesRequest {}).await {
        Ok(answer) => answer.into_inner().purposes,
        Err(status) => return unavailable(&status),
    };
    let state = match consent
        .get_consents(GetConsentsRequest {
            subject_id: who.subject().to_owned(),
        })
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return unavailable(&status),
    };
    let purposes = catalogue
        .iter()
        .map(|purpose| {
            let mine = state.purposes.iter().find(|p| p.purpose == purpose.key);
            let basis = mine.map_or(LegalBasis::Unspecified as i32, |p| p.legal_basis);
            let consent = mine.map_or(ConsentStatus::Unspecified as i32, |p| p.consent);
            PurposeView {
                key: purpose.key.clone(),
                title: title(&purpose.key),
                description: purpose.description.clone(),
                basis: basis_label(basis).to_owned(),
                consent_based: basis == LegalBasis::Consent as i32,
                granted: consent == ConsentStatus::Granted as i32,
                status: status_label(consent).to_owned(),
                text_hash: text_hash(purpose),
            }
        })
        .collect();
    let page = PrivacyPage {
        chrome: who.chrome,
        purposes,
        do_not_sell: state.do_not_sell,
        gpc,
        notice: notice.map(str::to_owned),
    };
    (status, render(&page)).into_response()
}

/// `GET /privacy`.
pub async fn show(State(app): State<AppState>, who: SignedIn) -> Response {
    page(&app, who, None, StatusCode::OK).await
}

/// A toggle.
#[derive(Deserialize)]
pub struct ChoiceForm {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    text_hash: String,
}

/// `POST /privacy`: GrantConsent or WithdrawConsent for one purpose, then the page again
/// (post/redirect/get). A grant whose text changed since the page was shown is refused:
/// the person is shown the new text.
pub async fn choose(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<ChoiceForm>,
) -> Response {
    let mut consent = app.mesh.consent.clone();
    let catalogue = match consent.list_purposes(ListPurposesRequest {}).await {
        Ok(answer) => answer.into_inner().purposes,
        Err(status) => return unavailable(&status),
    };
    let Some(purpose) = catalogue.iter().find(|p| p.key == input.purpose) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is no such purpose.",
        );
    };
    let written = match input.action.as_str() {
        "grant" => {
            let shown = text_hash(purpose);
            if !security::same(&shown, &input.text_hash) {
                return page(
                    &app,
                    who,
                    Some("The text of this choice has changed since you opened the page. Please read it again."),
                    StatusCode::CONFLICT,
                )
                .await;
            }
            consent
                .grant_consent(GrantConsentRequest {
                    subject_id: who.subject().to_owned(),
                    purpose: purpose.key.clone(),
                    source: Source::WebForm as i32,
                    policy_version: app.settings.policy_version.clone(),
                    text_hash: shown,
                    actor: super::ACTOR.to_owned(),
                    occurred_at: None,
                })
                .await
                .map(|_| ())
        }
        "withdraw" => consent
            .withdraw_consent(WithdrawConsentRequest {
                subject_id: who.subject().to_owned(),
                purpose: purpose.key.clone(),
                source: Source::WebForm as i32,
                actor: super::ACTOR.to_owned(),
            })
            .await
            .map(|_| ()),
        _ => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose to give or withdraw consent.",
            );
        }
    };
    match written {
        Ok(()) => Redirect::to("/privacy").into_response(),
        Err(status)
            if matches!(
                status.code(),
                Code::FailedPrecondition | Code::InvalidArgument
            ) =>
        {
            page(
                &app,
                who,
                Some("That choice cannot be made here."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(status) => unavailable(&status),
    }
}

/// The "do not sell or share" form.
#[derive(Deserialize)]
pub struct DoNotSellForm {
    #[serde(default)]
    do_not_sell: String,
}

/// `POST /privacy/do-not-sell`.
pub async fn do_not_sell(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<DoNotSellForm>,
) -> Response {
    let choice = match input.do_not_sell.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose whether we may sell or share your data.",
            );
        }
    };
    let written = app
        .mesh
        .consent
        .clone()
        .set_do_not_sell(SetDoNotSellRequest {
            subject_id: who.subject().to_owned(),
            do_not_sell: choice,
            source: Source::WebForm as i32,
            actor: super::ACTOR.to_owned(),
        })
        .await;
    match written {
        Ok(_) => Redirect::to("/privacy").into_response(),
        Err(status) => unavailable(&status),
    }
}

/// The history page's query: the page after a ledger position (not personal data).
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    after: i64,
}

/// Entries per history page.
const HISTORY_PAGE: i32 = 50;

fn entry(e: &LedgerEntry) -> HistoryEntry {
    let kind = LedgerEntryKind::try_from(e.kind).unwrap_or(LedgerEntryKind::Unspecified);
    let what = match kind {
        LedgerEntryKind::Grant => "consent given",
        LedgerEntryKind::ExplicitGrant => "explicit consent given",
        LedgerEntryKind::Withdraw => "consent withdrawn",
        LedgerEntryKind::Restrict => "processing restricted",
        LedgerEntryKind::Unrestrict => "restriction lifted",
        LedgerEntryKind::Object => "objection made",
        LedgerEntryKind::WithdrawObjection => "objection withdrawn",
        LedgerEntryKind::OptOut => "messages stopped",
        LedgerEntryKind::OptIn => "messages back on",
        LedgerEntryKind::DoNotSell => "do not sell or share",
        LedgerEntryKind::AllowSell => "selling and sharing allowed",
        LedgerEntryKind::Erased => "erased",
        LedgerEntryKind::Unspecified => "other",
    };
    let about = if e.purpose.is_empty() {
        match Channel::try_from(e.channel).unwrap_or(Channel::Unspecified) {
            Channel::Email => "email".to_owned(),
            Channel::Sms => "text messages".to_owned(),
            Channel::Push => "push notifications".to_owned(),
            Channel::Ads => "ads on other platforms".to_owned(),
            Channel::Unspecified => String::new(),
        }
    } else {
        title(&e.purpose)
    };
    let how = match Source::try_from(e.source).unwrap_or(Source::Unspecified) {
        Source::WebForm => "a form on our sites",
        Source::Api => "one of our services",
        Source::Import => "an import",
        Source::Gpc => "your browser's Global Privacy Control",
        Source::EmailLink => "a link in a message",
        Source::PrivacyRequest => "a request to our privacy team",
        Source::Unspecified => "",
    };
    let when = e
        .occurred_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    HistoryEntry {
        when,
        what: what.to_owned(),
        about,
        how: how.to_owned(),
        policy_version: e.policy_version.clone(),
    }
}

/// `GET /privacy/history`: the person's consent ledger, oldest first, a page at a time.
pub async fn history(
    State(app): State<AppState>,
    who: SignedIn,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let answer = app
        .mesh
        .consent
        .clone()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: who.subject().to_owned(),
            after_sequence: query.after.max(0),
            page_size: HISTORY_PAGE,
        })
        .await;
    match answer {
        Ok(answer) => {
            let page = answer.into_inner();
            render(&HistoryPage {
                chrome: who.chrome,
                entries: page.entries.iter().map(entry).collect(),
                next: (page.next_after_sequence > 0).then_some(page.next_after_sequence),
            })
        }
        Err(status) => unavailable(&status),
    }
}
