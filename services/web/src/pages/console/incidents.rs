//! The console's overdue page (issues 20 and 21): breaches whose authority deadline has
//! passed without a notification, and impact assessments (DPIAs of the incidents register,
//! TIAs of transfers) past their review date. Titles, regimes and dates only: an
//! incident's description may hold personal data and is not shown.

use axum::{extract::State, response::Response};
use pdm_proto::incidents::v1::{
    DeadlineState, ListOverdueRequest, ListOverdueReviewsRequest, ReviewKind,
};

use super::{
    Operator, day, time,
    views::{IncidentsPage, OverdueDeadlineRow, OverdueReviewRow},
};
use crate::{
    app::{AppState, render, unavailable},
    mesh::acting,
};

/// `GET /console/incidents`.
pub async fn overdue(State(app): State<AppState>, who: Operator) -> Response {
    let incidents = match app
        .mesh
        .incidents
        .clone()
        .list_overdue(acting(who.name(), ListOverdueRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner().incidents,
        Err(status) => return unavailable(&status),
    };
    let reviews = match app
        .mesh
        .assessments
        .clone()
        .list_overdue_reviews(acting(who.name(), ListOverdueReviewsRequest::default()))
        .await
    {
        Ok(answer) => answer.into_inner().reviews,
        Err(status) => return unavailable(&status),
    };
    let deadlines = incidents
        .iter()
        .flat_map(|incident| {
            let title = incident
                .details
                .as_ref()
                .map(|d| d.title.clone())
                .unwrap_or_default();
            let aware = incident
                .details
                .as_ref()
                .and_then(|d| d.aware_at.as_ref())
                .map(|t| time(Some(t)))
                .unwrap_or_default();
            incident
                .deadlines
                .iter()
                .filter(|d| d.state() == DeadlineState::Overdue)
                .map(move |d| OverdueDeadlineRow {
                    incident_id: incident.incident_id.clone(),
                    title: title.clone(),
                    regime: d.regime.clone(),
                    authority: d.authority.clone(),
                    aware_at: aware.clone(),
                    due_at: time(d.due_at.as_ref()),
                })
        })
        .collect();
    let reviews = reviews
        .iter()
        .map(|r| match r.kind() {
            ReviewKind::Tia => OverdueReviewRow {
                kind: "TIA".to_owned(),
                what: r.recipient_name.clone(),
                due: day(r.review_due.as_ref()),
                days_overdue: r.days_overdue,
            },
            _ => OverdueReviewRow {
                kind: "DPIA".to_owned(),
                what: r
                    .assessment
                    .as_ref()
                    .and_then(|a| a.details.as_ref())
                    .map(|d| d.title.clone())
                    .unwrap_or_default(),
                due: day(r.review_due.as_ref()),
                days_overdue: r.days_overdue,
            },
        })
        .collect();
    render(&IncidentsPage {
        chrome: who.chrome(),
        deadlines,
        reviews,
    })
}
