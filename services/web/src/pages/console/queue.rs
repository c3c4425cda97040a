//! The request queue, one request (tasks, receipts, verify, extend) and the yearly report,
//! all read from rights for the signed-in operator.

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse as _, Redirect, Response},
};
use pdm_proto::{
    common::v1::LegalBasis,
    rights::v1::{
        Credential, DataSubjectRequest, ExtendDeadlineRequest, GetReportRequest, GetRequestRequest,
        ListRequestsRequest, Regime, RequestKind, Status, VerifyRequestRequest, credential,
    },
};
use serde::Deserialize;
use tonic::Code;

use super::{
    Operator, day, time,
    views::{QueuePage, QueueRow, ReportPage, ReportRow, RequestPage, TaskRow},
};
use crate::{
    app::{AppState, problem, render, unavailable},
    mesh::acting,
    pages::field_errors,
};

/// Requests read per status for the queue.
const PAGE: i32 = 200;

fn kind_label(kind: i32) -> &'static str {
    match RequestKind::try_from(kind).unwrap_or(RequestKind::Unspecified) {
        RequestKind::Access => "access",
        RequestKind::Portability => "portability",
        RequestKind::Rectification => "rectification",
        RequestKind::Erasure => "erasure",
        RequestKind::Restriction => "restriction",
        RequestKind::Objection => "objection",
        RequestKind::CcpaKnow => "CCPA know",
        RequestKind::CcpaDelete => "CCPA delete",
        RequestKind::CcpaOptOut => "CCPA opt-out",
        RequestKind::Unspecified => "unknown",
    }
}

fn regime_label(regime: i32) -> &'static str {
    match Regime::try_from(regime).unwrap_or(Regime::Unspecified) {
        Regime::Gdpr => "EU GDPR",
        Regime::UkGdpr => "UK GDPR",
        Regime::Swiss => "Swiss FADP",
        Regime::Ccpa => "CCPA",
        Regime::Unspecified => "unknown",
    }
}

fn status_label(status: i32) -> &'static str {
    match Status::try_from(status).unwrap_or(Status::Unspecified) {
        Status::VerificationRequired => "waiting for verification",
        Status::InProgress => "in progress",
        Status::Completed => "completed",
        Status::Denied => "refused",
        Status::Cancelled => "cancelled",
        Status::Unspecified => "unknown",
    }
}

/// Whole days from `now` to `due`: rounded down ahead of it, up once it has passed (late
/// by an hour is late by a day).
pub fn days_left(due_secs: i64, now_secs: i64) -> i64 {
    let left = due_secs - now_secs;
    if left >= 0 {
        left / 86_400
    } else {
        -((-left + 86_399) / 86_400)
    }
}

fn row(r: &DataSubjectRequest, now: i64) -> QueueRow {
    let due = r.due_at.as_ref().map_or(now, |t| t.seconds);
    QueueRow {
        id: r.request_id.clone(),
        kind: kind_label(r.kind).to_owned(),
        regime: regime_label(r.regime).to_owned(),
        status: status_label(r.status).to_owned(),
        received: time(r.received_at.as_ref()),
        due: day(r.due_at.as_ref()),
        days_left: days_left(due, now),
        overdue: r.overdue,
        extended: !r.extension_reason.is_empty(),
        child: r.concerns_child,
    }
}

/// Overdue first, then soonest due (children's requests first among equals).
fn sort(rows: &mut [(i64, DataSubjectRequest)]) {
    rows.sort_by_key(|(due, r)| (!r.overdue, *due, !r.concerns_child));
}

/// The queue's query: which requests, and where the page starts.
#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

/// `GET /console`: the queue.
pub async fn list(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<QueueQuery>,
) -> Response {
    let filter = if q.status.is_empty() {
        "open".to_owned()
    } else {
        q.status.clone()
    };
    let (statuses, overdue_only): (Vec<Status>, bool) = match filter.as_str() {
        "open" => (
            vec![Status::VerificationRequired, Status::InProgress],
            false,
        ),
        "verification" => (vec![Status::VerificationRequired], false),
        "in_progress" => (vec![Status::InProgress], false),
        "overdue" => (vec![Status::Unspecified], true),
        "completed" => (vec![Status::Completed], false),
        "denied" => (vec![Status::Denied], false),
        "cancelled" => (vec![Status::Cancelled], false),
        _ => return problem(StatusCode::BAD_REQUEST, "There is no such list."),
    };
    let mut found = Vec::new();
    let mut next = None;
    for status in &statuses {
        let answer = app
            .mesh
            .rights
            .clone()
            .list_requests(acting(
                who.name(),
                ListRequestsRequest {
                    status: *status as i32,
                    overdue_only,
                    page_size: PAGE,
                    // One status at a time pages; the open list shows the first pages.
                    page_token: if statuses.len() == 1 {
                        q.after.clone()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                },
            ))
            .await;
        match answer {
            Ok(page) => {
                let page = page.into_inner();
                if statuses.len() == 1 && !page.next_page_token.is_empty() {
                    next = Some(page.next_page_token);
                }
                found.extend(
                    page.requests
                        .into_iter()
                        .map(|r| (r.due_at.as_ref().map_or(0, |t| t.seconds), r)),
                );
            }
            Err(status) if status.code() == Code::InvalidArgument => {
                return problem(StatusCode::BAD_REQUEST, "That page of the list is gone.");
            }
            Err(status) => return unavailable(&status),
        }
    }
    sort(&mut found);
    let now = app.clock.now().timestamp();
    render(&QueuePage {
        chrome: who.chrome(),
        rows: found.iter().map(|(_, r)| row(r, now)).collect(),
        filter,
        next,
    })
}

/// A request as the console shows it, with a notice or an error from a form.
async fn page(
    app: &AppState,
    who: &Operator,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let answer = app
        .mesh
        .rights
        .clone()
        .get_request(acting(
            who.name(),
            GetRequestRequest {
                request_id: id.to_owned(),
                session_token: String::new(),
            },
        ))
        .await;
    let r = match answer {
        Ok(answer) => answer.into_inner().request.unwrap_or_default(),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
            return problem(StatusCode::NOT_FOUND, "There is no such request.");
        }
        Err(status) => return unavailable(&status),
    };
    let now = app.clock.now().timestamp();
    let tasks = r
        .tasks
        .iter()
        .map(|t| {
            let receipt = t.receipt.as_ref();
            TaskRow {
                service: t.service.clone(),
                action: t.action.clone(),
                status: t.status.clone(),
                attempts: t.attempts,
                last_error: t.last_error.clone(),
                done: time(t.done_at.as_ref()),
                erased: receipt
                    .map(|r| {
                        r.erased
                            .iter()
                            .map(|e| format!("{} ({} records)", e.category, e.count))
                            .collect()
                    })
                    .unwrap_or_default(),
                kept: receipt
                    .map(|r| {
                        r.retained
                            .iter()
                            .map(|k| {
                                let basis = LegalBasis::try_from(k.legal_basis)
                                    .map(|b| {
                                        b.as_str_name()
                                            .trim_start_matches("LEGAL_BASIS_")
                                            .to_lowercase()
                                    })
                                    .unwrap_or_default();
                                format!(
                                    "{} ({} records, {basis}: {}; until {})",
                                    k.category,
                                    k.count,
                                    k.reason,
                                    day(k.retain_until.as_ref())
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let messages = r
        .messages
        .iter()
        .map(|m| {
            let status = pdm_proto::rights::v1::DeliveryStatus::try_from(m.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("DELIVERY_STATUS_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            (m.topic.clone(), status, m.attempts)
        })
        .collect();
    let open = matches!(
        Status::try_from(r.status),
        Ok(Status::VerificationRequired | Status::InProgress)
    );
    let outcome = r
        .refusal
        .as_ref()
        .map(|f| f.reasons.join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| r.outcome_reason.clone());
    let view = RequestPage {
        chrome: who.chrome(),
        r: row(&r, now),
        subject: r.subject_id.clone(),
        original_due: day(r.original_due_at.as_ref()),
        extension_reason: r.extension_reason.clone(),
        closed: time(r.closed_at.as_ref()),
        outcome,
        tasks,
        messages,
        waiting_verification: r.status == Status::VerificationRequired as i32,
        open,
        notice,
        error,
    };
    (status, render(&view)).into_response()
}

/// `GET /console/requests/{id}`.
pub async fn show(State(app): State<AppState>, who: Operator, Path(id): Path<String>) -> Response {
    page(&app, &who, &id, None, None, StatusCode::OK).await
}

/// The verify form.
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    subject_id: String,
    #[serde(default)]
    reference: String,
}

/// `POST /console/requests/{id}/verify`: the operator vouches for a check made out of
/// band, quoting their reference.
pub async fn verify(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
    Form(input): Form<VerifyForm>,
) -> Response {
    let answer = app
        .mesh
        .rights
        .clone()
        .verify_request(acting(
            who.name(),
            VerifyRequestRequest {
                request_id: id.clone(),
                subject_id: input.subject_id.trim().to_owned(),
                credential: Some(Credential {
                    credential: Some(credential::Credential::OperatorReference(
                        input.reference.trim().to_owned(),
                    )),
                }),
            },
        ))
        .await;
    match answer {
        Ok(_) => {
            tracing::info!(request_id = %id, "request verified from the console");
            Redirect::to(&format!("/console/requests/{id}")).into_response()
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            let errors = field_errors(&status);
            let text = errors
                .0
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            page(&app, &who, &id, None, Some(text), StatusCode::BAD_REQUEST).await
        }
        Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
            let text = status.message().to_owned();
            page(&app, &who, &id, None, Some(text), StatusCode::CONFLICT).await
        }
        Err(status) => unavailable(&status),
    }
}

/// The extend form.
#[derive(Deserialize)]
pub struct ExtendForm {
    #[serde(default)]
    months: i32,
    #[serde(default)]
    reason: String,
}

/// `POST /console/requests/{id}/extend`: a longer deadline with the reason told to the
/// subject ("GDPR Data Protection Rights": one month, extendable with a recorded reason).
pub async fn extend(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
    Form(input): Form<ExtendForm>,
) -> Response {
    let answer = app
        .mesh
        .rights
        .clone()
        .extend_deadline(acting(
            who.name(),
            ExtendDeadlineRequest {
                request_id: id.clone(),
                months: input.months,
                reason: input.reason.trim().to_owned(),
            },
        ))
        .await;
    match answer {
        Ok(answer) => {
            tracing::info!(request_id = %id, "deadline extended from the console");
            let due = answer
                .into_inner()
                .request
                .map(|r| day(r.due_at.as_ref()))
                .unwrap_or_default();
            page(
                &app,
                &who,
                &id,
                Some(format!("Extended: now due {due}. The subject is told why.")),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            let errors = field_errors(&status);
            let text = errors
                .0
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            page(&app, &who, &id, None, Some(text), StatusCode::BAD_REQUEST).await
        }
        Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
            let text = status.message().to_owned();
            page(&app, &who, &id, None, Some(text), StatusCode::CONFLICT).await
        }
        Err(status) => unavailable(&status),
    }
}

/// The report's query.
#[derive(Deserialize, Default)]
pub struct ReportQuery {
    #[serde(default)]
    year: Option<String>,
}

/// `GET /console/report?year=`: requests of a year per kind.
pub async fn report(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<ReportQuery>,
) -> Response {
    use chrono::Datelike as _;
    let year = match q.year.as_deref().map(str::trim) {
        None | Some("") => app.clock.now().year(),
        Some(text) => match text.parse::<i32>() {
            Ok(year) if (2000..=9999).contains(&year) => year,
            _ => return problem(StatusCode::BAD_REQUEST, "A year from 2000, please."),
        },
    };
    let answer = app
        .mesh
        .rights
        .clone()
        .get_report(acting(who.name(), GetReportRequest { year }))
        .await;
    let report = match answer {
        Ok(answer) => answer.into_inner(),
        Err(status) => return unavailable(&status),
    };
    let rows = report
        .kinds
        .iter()
        .map(|k| ReportRow {
            kind: kind_label(k.kind).to_owned(),
            received: k.received,
            complied: k.complied,
            denied: k.denied,
            median_days: format!("{:.1}", k.median_days_to_answer),
            reasons: k
                .deletion_reasons
                .iter()
                .map(|r| {
                    (
                        r.reason
                            .trim_start_matches("DELETION_REASON_")
                            .replace('_', " ")
                            .to_lowercase(),
                        r.count,
                    )
                })
                .collect(),
        })
        .collect();
    render(&ReportPage {
        chrome: who.chrome(),
        year,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_round_down_ahead_and_up_once_late() {
        let day = 86_400;
        assert_eq!(days_left(10 * day + 5, 0), 10);
        assert_eq!(days_left(day - 1, 0), 0);
        assert_eq!(days_left(0, 0), 0);
        assert_eq!(days_left(0, 3600), -1, "an hour late is a day late");
        assert_eq!(days_left(0, day + 1), -2);
    }

    #[test]
    fn overdue_requests_come_first() {
        let r = |id: &str, overdue: bool| DataSubjectRequest {
            request_id: id.to_owned(),
            overdue,
            ..Default::default()
        };
        let mut rows = vec![
            (5, r("later", false)),
            (9, r("late", true)),
            (1, r("soon", false)),
        ];
        sort(&mut rows);
        let ids: Vec<&str> = rows.iter().map(|(_, r)| r.request_id.as_str()).collect();
        assert_eq!(ids, ["late", "soon", "later"]);
    }
}
