//! The console's templates (askama, HTML-escaped).

use askama::Template;

/// The console's header: the operator's name and the sign-out form's token.
#[derive(Debug, Clone, Default)]
pub struct ConsoleChrome {
    /// The signed-in operator.
    pub operator: Option<String>,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Operator sign-in.
#[derive(Template)]
#[template(path = "console/sign_in.html")]
pub struct SignInPage {
    pub chrome: ConsoleChrome,
    pub csrf: String,
    pub name: String,
    pub error: Option<String>,
}

/// One request of the queue.
#[derive(Debug, Clone, Default)]
pub struct QueueRow {
    pub id: String,
    pub kind: String,
    pub regime: String,
    pub status: String,
    pub received: String,
    pub due: String,
    /// Whole days until the deadline (negative: late by that many).
    pub days_left: i64,
    pub overdue: bool,
    pub extended: bool,
    pub child: bool,
}

/// The request queue.
#[derive(Template)]
#[template(path = "console/queue.html")]
pub struct QueuePage {
    pub chrome: ConsoleChrome,
    pub rows: Vec<QueueRow>,
    /// The status filter in force ("open" by default).
    pub filter: String,
    pub next: Option<String>,
}

/// One task of a request.
#[derive(Debug, Clone, Default)]
pub struct TaskRow {
    pub service: String,
    pub action: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: String,
    pub done: String,
    /// The erasure receipt, readable: what was erased, what is kept and why.
    pub erased: Vec<String>,
    pub kept: Vec<String>,
}

/// One request, its tasks and receipts, and the operator's forms.
#[derive(Template)]
#[template(path = "console/request.html")]
pub struct RequestPage {
    pub chrome: ConsoleChrome,
    pub r: QueueRow,
    pub subject: String,
    pub original_due: String,
    pub extension_reason: String,
    pub closed: String,
    pub outcome: String,
    pub tasks: Vec<TaskRow>,
    /// (topic, status, attempts) of the messages to the subject.
    pub messages: Vec<(String, String, i32)>,
    pub waiting_verification: bool,
    pub open: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// One kind's line of the yearly report.
#[derive(Debug, Clone, Default)]
pub struct ReportRow {
    pub kind: String,
    pub received: u32,
    pub complied: u32,
    pub denied: u32,
    pub median_days: String,
    pub reasons: Vec<(String, u32)>,
}

/// The yearly report.
#[derive(Template)]
#[template(path = "console/report.html")]
pub struct ReportPage {
    pub chrome: ConsoleChrome,
    pub year: i32,
    pub rows: Vec<ReportRow>,
}

/// One recipient of the register.
#[derive(Debug, Clone, Default)]
pub struct RecipientRow {
    pub name: String,
    pub key: String,
    pub role: String,
    pub country: String,
    pub purposes: String,
    pub categories: String,
    pub contract: String,
    /// Its mechanisms: (kind, status, expires, review due).
    pub mechanisms: Vec<(String, String, String, String)>,
}

/// One mechanism due for expiry or review.
#[derive(Debug, Clone, Default)]
pub struct ExpiringRow {
    pub recipient: String,
    pub kind: String,
    pub due: String,
    pub due_at: String,
    pub overdue: bool,
}

/// The transfers register.
#[derive(Template)]
#[template(path = "console/transfers.html")]
pub struct TransfersPage {
    pub chrome: ConsoleChrome,
    pub recipients: Vec<RecipientRow>,
    pub expiring: Vec<ExpiringRow>,
    pub within_days: i32,
}

/// One retention policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyRow {
    pub category: String,
    pub period: String,
    pub trigger: String,
    pub basis: String,
    pub description: String,
    pub version: i32,
}

/// One legal hold.
#[derive(Debug, Clone, Default)]
pub struct HoldRow {
    pub id: String,
    /// "every subject" or "one subject" (never who).
    pub scope: String,
    pub category: String,
    pub reason: String,
    pub reference: String,
    pub placed: String,
    pub released: String,
}

/// One purge run.
#[derive(Debug, Clone, Default)]
pub struct RunRow {
    pub id: String,
    pub dry_run: bool,
    pub status: String,
    pub started: String,
    pub finished: String,
    pub triggered_by: String,
}

/// The retention pages.
#[derive(Template)]
#[template(path = "console/retention.html")]
pub struct RetentionPage {
    pub chrome: ConsoleChrome,
    pub policies: Vec<PolicyRow>,
    pub holds: Vec<HoldRow>,
    pub runs: Vec<RunRow>,
}

/// One service's part of a purge run, per category.
#[derive(Debug, Clone, Default)]
pub struct RunServiceRow {
    pub service: String,
    pub ok: bool,
    pub error: String,
    pub duration_ms: i64,
    /// (category, count as text).
    pub results: Vec<(String, String)>,
}

/// One purge run and what each service did (or would do).
#[derive(Template)]
#[template(path = "console/run.html")]
pub struct RunPage {
    pub chrome: ConsoleChrome,
    pub run: RunRow,
    pub services: Vec<RunServiceRow>,
    /// The run is still running: the page links to itself to check again. It does not
    /// reload itself: a timed refresh fails WCAG 2.2.1 (technique F41; axe: meta-refresh).
    pub refresh: bool,
}

/// One purpose's counts.
#[derive(Debug, Clone, Default)]
pub struct ConsentRow {
    pub purpose: String,
    pub title: String,
    pub granted_now: u64,
    pub withdrawn_now: u64,
    pub grants_recorded: u64,
    pub withdrawals_recorded: u64,
}

/// Consent statistics per purpose.
#[derive(Template)]
#[template(path = "console/consent.html")]
pub struct ConsentPage {
    pub chrome: ConsoleChrome,
    pub rows: Vec<ConsentRow>,
    pub sequence: i64,
}

/// One service's trail verification.
#[derive(Debug, Clone, Default)]
pub struct TrailRow {
    pub service: String,
    /// "intact", "broken" or "unavailable".
    pub state: String,
    pub entries: u64,
    pub problems: Vec<String>,
}

/// The access trails, verified.
#[derive(Template)]
#[template(path = "console/trails.html")]
pub struct TrailsPage {
    pub chrome: ConsoleChrome,
    pub rows: Vec<TrailRow>,
}

/// An authority deadline passed without a notification.
#[derive(Debug, Clone, Default)]
pub struct OverdueDeadlineRow {
    pub incident_id: String,
    pub title: String,
    pub regime: String,
    pub authority: String,
    pub aware_at: String,
    pub due_at: String,
}

/// An impact assessment past its review date.
#[derive(Debug, Clone, Default)]
pub struct OverdueReviewRow {
    pub kind: String,
    pub what: String,
    pub due: String,
    pub days_overdue: i32,
}

/// What is overdue: breaches' authority notifications and assessments' reviews.
#[derive(Template)]
#[template(path = "console/incidents.html")]
pub struct IncidentsPage {
    pub chrome: ConsoleChrome,
    pub deadlines: Vec<OverdueDeadlineRow>,
    pub reviews: Vec<OverdueReviewRow>,
}
