//! The registers the console shows: transfers (recipients, mechanisms, those expiring),
//! retention (policies, holds, purge runs; a dry run started and watched), consent counts
//! per purpose and each service's access trail verified.

use std::time::Duration;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse as _, Redirect, Response},
};
use pdm_proto::{
    audit::v1::VerifyAccessLogRequest,
    common::v1::LegalBasis,
    consent::v1::{GetConsentStatisticsRequest, ListPurposesRequest},
    retention::v1::{
        GetPurgeRunRequest, ListLegalHoldsRequest, ListPoliciesRequest, ListPurgeRunsRequest,
        PurgeRun, RunPurgeRequest, RunStatus,
    },
    subject::v1::RetentionTrigger,
    transfers::v1::{
        ListExpiringMechanismsRequest, ListMechanismsRequest, ListRecipientsRequest, MechanismKind,
        MechanismStatus, RecipientRole,
    },
};
use tonic::Code;

use super::{
    Operator, day, time,
    views::{
        ConsentPage, ConsentRow, ExpiringRow, HoldRow, PolicyRow, RecipientRow, RetentionPage,
        RunPage, RunRow, RunServiceRow, TrailRow, TrailsPage, TransfersPage,
    },
};
use crate::{
    app::{AppState, problem, render, unavailable},
    mesh::acting,
};

/// How far ahead the register looks for expiring mechanisms (days).
const EXPIRING_WITHIN_DAYS: i32 = 90;
/// Purge runs listed.
const RUNS_LISTED: i32 = 20;
/// Longest wait for one service's trail to be verified.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// An enum's proto name for people: `MECHANISM_KIND_EU_SCC` → `eu scc`.
fn label(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .replace('_', " ")
        .to_lowercase()
}

/// `GET /console/transfers`.
pub async fn transfers(State(app): State<AppState>, who: Operator) -> Response {
    let mut client = app.mesh.transfers.clone();
    let recipients = match client
        .list_recipients(acting(who.name(), ListRecipientsRequest::default()))
        .await
    {
        Ok(answer) => answer.into_inner().recipients,
        Err(status) => return unavailable(&status),
    };
    let mechanisms = match client
        .list_mechanisms(acting(who.name(), ListMechanismsRequest::default()))
        .await
    {
        Ok(answer) => answer.into_inner().mechanisms,
        Err(status) => return unavailable(&status),
    };
    let expiring = match client
        .list_expiring_mechanisms(acting(
            who.name(),
            ListExpiringMechanismsRequest {
                within_days: EXPIRING_WITHIN_DAYS,
            },
        ))
        .await
    {
        Ok(answer) => answer.into_inner().mechanisms,
        Err(status) => return unavailable(&status),
    };
    let kind = |k: i32| {
        MechanismKind::try_from(k)
            .map(|k| label(k.as_str_name(), "MECHANISM_KIND_"))
            .unwrap_or_default()
    };
    let recipients = recipients
        .iter()
        .map(|r| RecipientRow {
            name: r.name.clone(),
            key: r.key.clone(),
            role: RecipientRole::try_from(r.role)
                .map(|k| label(k.as_str_name(), "RECIPIENT_ROLE_"))
                .unwrap_or_default(),
            country: r.country.clone(),
            purposes: r.purposes.join(", "),
            categories: r.data_categories.join(", "),
            contract: format!("{} {}", r.contract_reference, r.contract_date)
                .trim()
                .to_owned(),
            mechanisms: mechanisms
                .iter()
                .filter(|m| m.recipient_id == r.recipient_id)
                .map(|m| {
                    (
                        kind(m.kind),
                        MechanismStatus::try_from(m.status)
                            .map(|s| label(s.as_str_name(), "MECHANISM_STATUS_"))
                            .unwrap_or_default(),
                        day(m.expires_at.as_ref()),
                        day(m.review_due.as_ref()),
                    )
                })
                .collect(),
        })
        .collect();
    let expiring = expiring
        .iter()
        .map(|e| ExpiringRow {
            recipient: e.recipient_name.clone(),
            kind: e
                .mechanism
                .as_ref()
                .map(|m| kind(m.kind))
                .unwrap_or_default(),
            due: e.due.clone(),
            due_at: day(e.due_at.as_ref()),
            overdue: e.overdue,
        })
        .collect();
    render(&TransfersPage {
        chrome: who.chrome(),
        recipients,
        expiring,
        within_days: EXPIRING_WITHIN_DAYS,
    })
}

fn run_row(run: &PurgeRun) -> RunRow {
    RunRow {
        id: run.run_id.clone(),
        dry_run: run.dry_run,
        status: RunStatus::try_from(run.status)
            .map(|s| label(s.as_str_name(), "RUN_STATUS_"))
            .unwrap_or_default(),
        started: time(run.started_at.as_ref()),
        finished: time(run.finished_at.as_ref()),
        triggered_by: run.triggered_by.clone(),
    }
}

/// `GET /console/retention`.
pub async fn retention(State(app): State<AppState>, who: Operator) -> Response {
    let mut client = app.mesh.retention.clone();
    let policies = match client
        .list_policies(acting(who.name(), ListPoliciesRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner().policies,
        Err(status) => return unavailable(&status),
    };
    let holds = match client
        .list_legal_holds(acting(
            who.name(),
            ListLegalHoldsRequest {
                include_released: true,
                subject_id: String::new(),
            },
        ))
        .await
    {
        Ok(answer) => answer.into_inner().holds,
        Err(status) => return unavailable(&status),
    };
    let runs = match client
        .list_purge_runs(acting(
            who.name(),
            ListPurgeRunsRequest {
                page_size: RUNS_LISTED,
                page_token: String::new(),
            },
        ))
        .await
    {
        Ok(answer) => answer.into_inner().runs,
        Err(status) => return unavailable(&status),
    };
    let policies = policies
        .iter()
        .map(|p| {
            let period = p.period.unwrap_or_default();
            let parts: Vec<String> = [
                (period.years, "years"),
                (period.months, "months"),
                (period.days, "days"),
            ]
            .iter()
            .filter(|(n, _)| *n != 0)
            .map(|(n, unit)| format!("{n} {unit}"))
            .collect();
            PolicyRow {
                category: p.category.clone(),
                period: if parts.is_empty() {
                    "not kept".to_owned()
                } else {
                    parts.join(" ")
                },
                trigger: RetentionTrigger::try_from(p.trigger)
                    .map(|t| label(t.as_str_name(), "RETENTION_TRIGGER_"))
                    .unwrap_or_default(),
                basis: LegalBasis::try_from(p.legal_basis)
                    .map(|b| label(b.as_str_name(), "LEGAL_BASIS_"))
                    .unwrap_or_default(),
                description: p.description.clone(),
                version: p.version,
            }
        })
        .collect();
    let holds = holds
        .iter()
        .map(|h| HoldRow {
            id: h.hold_id.clone(),
            scope: if h.subject_id.is_empty() {
                "every subject".to_owned()
            } else {
                "one subject".to_owned()
            },
            category: if h.category.is_empty() {
                "every category".to_owned()
            } else {
                h.category.clone()
            },
            reason: h.reason.clone(),
            reference: h.reference.clone(),
            placed: time(h.placed_at.as_ref()),
            released: time(h.released_at.as_ref()),
        })
        .collect();
    render(&RetentionPage {
        chrome: who.chrome(),
        policies,
        holds,
        runs: runs.iter().map(run_row).collect(),
    })
}

/// `POST /console/retention/dry-run`: starts a dry run (counts only, deletes nothing) in
/// the operator's name, then shows it; the run goes on in retention whether or not the
/// page is read.
pub async fn dry_run(State(app): State<AppState>, who: Operator) -> Response {
    let started = app
        .mesh
        .retention
        .clone()
        .run_purge(acting(
            who.name(),
            RunPurgeRequest {
                dry_run: true,
                triggered_by: format!("operator:{} (console)", who.name()),
            },
        ))
        .await;
    let mut stream = match started {
        Ok(answer) => answer.into_inner(),
        Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::Aborted) => {
            return problem(
                StatusCode::CONFLICT,
                "Another purge run is in progress. Wait for it to end and try again.",
            );
        }
        Err(status) => return unavailable(&status),
    };
    // The first progress message names the run; the rest is read from the run's page.
    loop {
        match stream.message().await {
            Ok(Some(progress)) => {
                if let Some(run) = progress.run.filter(|r| !r.run_id.is_empty()) {
                    tracing::info!(run_id = %run.run_id, "dry run started from the console");
                    return Redirect::to(&format!("/console/retention/runs/{}", run.run_id))
                        .into_response();
                }
            }
            Ok(None) => return Redirect::to("/console/retention").into_response(),
            Err(status) => return unavailable(&status),
        }
    }
}

/// `GET /console/retention/runs/{id}`: a run and what each service did or would do.
pub async fn run(State(app): State<AppState>, who: Operator, Path(id): Path<String>) -> Response {
    let answer = app
        .mesh
        .retention
        .clone()
        .get_purge_run(acting(
            who.name(),
            GetPurgeRunRequest { run_id: id.clone() },
        ))
        .await;
    let run = match answer {
        Ok(answer) => answer.into_inner().run.unwrap_or_default(),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
            return problem(StatusCode::NOT_FOUND, "There is no such run.");
        }
        Err(status) => return unavailable(&status),
    };
    let services = run
        .services
        .iter()
        .map(|s| RunServiceRow {
            service: s.service.clone(),
            ok: s.ok,
            error: s.error.clone(),
            duration_ms: s.duration_ms,
            results: s
                .results
                .iter()
                .map(|r| {
                    let held = if r.held > 0 {
                        format!(" ({} held)", r.held)
                    } else {
                        String::new()
                    };
                    (r.category.clone(), format!("{}{held}", r.purged))
                })
                .collect(),
        })
        .collect();
    render(&RunPage {
        chrome: who.chrome(),
        refresh: run.status == RunStatus::Running as i32,
        run: run_row(&run),
        services,
    })
}

/// `GET /console/consent`: counts per purpose, never a person.
pub async fn consent(State(app): State<AppState>, who: Operator) -> Response {
    let mut client = app.mesh.consent.clone();
    let purposes = match client
        .list_purposes(acting(who.name(), ListPurposesRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner().purposes,
        Err(status) => return unavailable(&status),
    };
    let stats = match client
        .get_consent_statistics(acting(who.name(), GetConsentStatisticsRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return unavailable(&status),
    };
    let rows = purposes
        .iter()
        .map(|p| {
            let counts = stats
                .purposes
                .iter()
                .find(|s| s.purpose == p.key)
                .cloned()
                .unwrap_or_default();
            ConsentRow {
                purpose: p.key.clone(),
                title: p.description.clone(),
                granted_now: counts.granted_now,
                withdrawn_now: counts.withdrawn_now,
                grants_recorded: counts.grants_recorded,
                withdrawals_recorded: counts.withdrawals_recorded,
            }
        })
        .collect();
    render(&ConsentPage {
        chrome: who.chrome(),
        rows,
        sequence: stats.sequence,
    })
}

/// `GET /console/trails`: every service's trail verified now, side by side.
pub async fn trails(State(app): State<AppState>, who: Operator) -> Response {
    let mut calls = tokio::task::JoinSet::new();
    for (index, (service, client)) in app.mesh.trails.iter().enumerate() {
        let mut client = client.clone();
        let request = acting(who.name(), VerifyAccessLogRequest::default());
        let service = *service;
        calls.spawn(async move {
            let answer =
                tokio::time::timeout(VERIFY_TIMEOUT, client.verify_access_log(request)).await;
            let row = match answer {
                Ok(Ok(answer)) => {
                    let v = answer.into_inner();
                    let mut problems: Vec<String> = v
                        .problems
                        .iter()
                        .map(|p| format!("at {}: {}", p.seq, p.description))
                        .collect();
                    if v.truncated {
                        problems.push("more problems than listed".to_owned());
                    }
                    TrailRow {
                        service: service.to_owned(),
                        state: if v.intact { "intact" } else { "broken" }.to_owned(),
                        entries: v.entries,
                        problems,
                    }
                }
                Ok(Err(status)) => {
                    tracing::warn!(service, code = ?status.code(), "trail not verified");
                    TrailRow {
                        service: service.to_owned(),
                        state: "unavailable".to_owned(),
                        ..Default::default()
                    }
                }
                Err(_) => TrailRow {
                    service: service.to_owned(),
                    state: "unavailable".to_owned(),
                    ..Default::default()
                },
            };
            (index, row)
        });
    }
    let mut rows: Vec<(usize, TrailRow)> = calls.join_all().await;
    rows.sort_by_key(|(index, _)| *index);
    render(&TrailsPage {
        chrome: who.chrome(),
        rows: rows.into_iter().map(|(_, row)| row).collect(),
    })
}
