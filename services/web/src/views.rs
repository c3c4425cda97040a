//! The pages' templates (askama: checked when the crate compiles, HTML-escaped).

use askama::Template;

/// What the header of every page needs: the person's name (top right, leading to the
/// account settings) and the token of the sign-out form.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// "First Last" when signed in.
    pub name: Option<String>,
    /// The session's CSRF token (empty when not signed in).
    pub csrf: String,
}

impl Chrome {
    /// The header of a visitor who is not signed in.
    pub fn anonymous() -> Self {
        Self::default()
    }
}

/// Problems with a form's fields, by field name.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    /// The problem with `field`, if any.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An error page.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

/// Sign in.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
}

/// Account settings: what the name at the top right leads to.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
}

/// Profile: view and correct.
#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub chrome: Chrome,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub region: String,
    pub birth_date: String,
    pub errors: FieldErrors,
    pub notice: Option<String>,
}

/// One purpose of the catalogue as the privacy page shows it.
#[derive(Debug, Clone)]
pub struct PurposeView {
    pub key: String,
    pub title: String,
    pub description: String,
    pub basis: String,
    pub consent_based: bool,
    pub granted: bool,
    pub status: String,
    pub text_hash: String,
}

/// Privacy choices.
#[derive(Template)]
#[template(path = "privacy.html")]
pub struct PrivacyPage {
    pub chrome: Chrome,
    pub purposes: Vec<PurposeView>,
    pub do_not_sell: bool,
    pub gpc: bool,
    pub notice: Option<String>,
}

/// One channel as the messages page shows it.
#[derive(Debug, Clone)]
pub struct ChannelView {
    pub value: String,
    pub label: String,
    pub opted_out: bool,
}

/// Messages: opt out per channel.
#[derive(Template)]
#[template(path = "messages.html")]
pub struct MessagesPage {
    pub chrome: Chrome,
    pub channels: Vec<ChannelView>,
}

/// Delete account, step 1: why.
#[derive(Template)]
#[template(path = "delete_reason.html")]
pub struct DeleteReasonPage {
    pub chrome: Chrome,
    pub reasons: Vec<(String, String)>,
    pub error: Option<String>,
}

/// Delete account, step 2: the password again and the final confirmation.
#[derive(Template)]
#[template(path = "delete_confirm.html")]
pub struct DeleteConfirmPage {
    pub chrome: Chrome,
    pub reason: String,
    pub reason_label: String,
    pub request_id: String,
    pub error: Option<String>,
}

/// The account is deleted.
#[derive(Template)]
#[template(path = "deleted.html")]
pub struct DeletedPage {
    pub chrome: Chrome,
}

/// One ledger entry as the history page shows it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub when: String,
    pub what: String,
    pub about: String,
    pub how: String,
    pub policy_version: String,
}

/// The history of the person's choices.
#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryPage {
    pub chrome: Chrome,
    pub entries: Vec<HistoryEntry>,
    pub next: Option<i64>,
}

/// One data-subject request as the pages show it.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub received: String,
    pub due: String,
    pub overdue: bool,
    pub extension_reason: String,
    pub closed: String,
    pub outcome: String,
    pub package_expires: String,
}

/// My requests, with the "download my data" form.
#[derive(Template)]
#[template(path = "requests.html")]
pub struct RequestsPage {
    pub chrome: Chrome,
    pub requests: Vec<RequestView>,
    /// The idempotency key of the form: submitted twice, still one request.
    pub reference: String,
}

/// One request and its progress.
#[derive(Template)]
#[template(path = "request.html")]
pub struct RequestPage {
    pub chrome: Chrome,
    pub r: RequestView,
    /// (service, status) per task.
    pub tasks: Vec<(String, String)>,
    pub done: usize,
    /// Whether the request is still moving: the page offers to check again. It does not
    /// reload itself: a timed refresh fails WCAG 2.2.1 (technique F41).
    pub in_progress: bool,
}

/// The package, readable: every value with where it sits.
#[derive(Template)]
#[template(path = "package.html")]
pub struct PackagePage {
    pub chrome: Chrome,
    pub id: String,
    pub generated: String,
    pub expires: String,
    /// (where, value).
    pub rows: Vec<(String, String)>,
}
