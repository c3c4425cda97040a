//! ReportChild, ConfirmChildReport and ListChildReports ("Our policy towards the
//! Children"): anyone reports, the privacy team confirms, and the erasure runs first, due
//! 72 hours later (rules: [`crate::domain::children`]).

use pdm_proto::rights::v1::{self as pb, Regime, RequestKind};
use pdm_runtime::{
    FieldViolations, SubjectId, convert::timestamp, text::TextRule, text::refuse_card_number,
};
use pdm_tls::identity::Caller;

use super::RightsApi;
use crate::{
    domain::children,
    error::{Result, RightsError},
    sealed::{self, ChildReportDetails, Details},
    store::{ChildReportStatus, KeyOf, RequestStatus, entities::child_report, entities::request},
};

/// Longest notes of a report.
const MAX_NOTES: usize = 1000;
/// Longest operator reference.
const MAX_REFERENCE: usize = 256;

impl RightsApi {
    /// Records a report; the answer never tells whether the account exists.
    pub(super) async fn report_child(
        &self,
        r: pb::ReportChildRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::ChildReport> {
        let mut v = FieldViolations::new();
        let subject_given = !r.subject_id.trim().is_empty();
        let email_given = !r.email.trim().is_empty();
        let subject = if subject_given {
            v.check("subject_id", r.subject_id.trim().parse::<SubjectId>())
                .map(|s| s.to_string())
        } else {
            None
        };
        let email = if email_given {
            v.check("email", children::email(&r.email))
                .and_then(|e| v.check("email", refuse_card_number(&e)).map(|()| e))
        } else {
            None
        };
        // Exactly one names the account (a bad one already has its violation).
        if !subject_given && !email_given {
            v.add(
                "subject_id",
                "required: subject_id or email names the account",
            );
        } else if subject_given && email.is_some() {
            v.add("email", "give subject_id or email, not both");
        }
        let contact = v.check("reporter_contact", children::email(&r.reporter_contact));
        if let Some(c) = &contact {
            v.check("reporter_contact", refuse_card_number(c));
        }
        let notes = v
            .check("notes", TextRule::lines(MAX_NOTES).maybe(&r.notes))
            .flatten();
        v.finish().map_err(RightsError::Invalid)?;
        let contact = contact.ok_or(RightsError::Internal("validated contact missing"))?;
        let now = self.clock.now();
        let report_id = uuid::Uuid::now_v7().to_string();
        let key = self.store.new_key(KeyOf::Report(&report_id), now).await?;
        let details = ChildReportDetails {
            email,
            reporter_contact: contact,
            notes,
        };
        let row = child_report::Model {
            report_id: report_id.clone(),
            status: ChildReportStatus::Reported,
            received_at: now,
            confirmed_at: None,
            subject_id: subject,
            reported_by: caller.map(ToString::to_string),
            request_id: None,
            wrapped_key: Vec::new(),
            details: sealed::seal_report(&key, &details)?,
            updated_at: now,
        };
        self.store.insert_child_report(row.clone()).await?;
        tracing::info!(report_id = %report_id, "child report received");
        Ok(pb::ChildReport {
            report_id,
            status: pb::ChildReportStatus::from(row.status) as i32,
            received_at: Some(timestamp(now)),
            ..Default::default()
        })
    }

    /// Confirms a report into an erasure request that runs first and is due in 72 hours.
    pub(super) async fn confirm_child_report(
        &self,
        r: pb::ConfirmChildReportRequest,
        caller: Option<&Caller>,
    ) -> Result<(pb::ChildReport, pb::DataSubjectRequest)> {
        let mut v = FieldViolations::new();
        let report_id = match uuid::Uuid::parse_str(&r.report_id) {
            Ok(id) => Some(id.hyphenated().to_string()),
            Err(_) => {
                v.add("report_id", "required: the id ReportChild returned");
                None
            }
        };
        let subject = if r.subject_id.trim().is_empty() {
            None
        } else {
            v.check("subject_id", r.subject_id.trim().parse::<SubjectId>())
        };
        let reference = v.check(
            "verified_by",
            TextRule::line(MAX_REFERENCE).required(&r.verified_by),
        );
        let regime = match Regime::try_from(r.regime) {
            Ok(Regime::Unspecified) => Some(Regime::Gdpr),
            Ok(regime) => Some(regime),
            Err(_) => {
                v.add("regime", "unknown regime");
                None
            }
        };
        v.finish().map_err(RightsError::Invalid)?;
        super::rights::privacy_team_only(caller, "ConfirmChildReport")?;
        let (Some(report_id), Some(reference), Some(regime)) = (report_id, reference, regime)
        else {
            return Err(RightsError::Internal("validated confirmation missing"));
        };
        let report = self
            .store
            .child_report(&report_id)
            .await?
            .ok_or(RightsError::NotFound)?;
        if report.status != ChildReportStatus::Reported {
            return Err(RightsError::NotAllowed(
                "the report was already confirmed".into(),
            ));
        }
        let subject = match (&report.subject_id, subject) {
            (Some(named), Some(given)) if *named != given.to_string() => {
                return Err(RightsError::Invalid(pdm_runtime::error::invalid_field(
                    "subject_id",
                    "must be the subject the report names",
                )));
            }
            (Some(named), _) => named
                .parse::<SubjectId>()
                .map_err(|_| RightsError::Internal("a child report with a malformed subject"))?,
            (None, Some(given)) => given,
            (None, None) => {
                return Err(RightsError::Invalid(pdm_runtime::error::invalid_field(
                    "subject_id",
                    "required: the report named only an email; give the account it belongs to",
                )));
            }
        };
        let report_key = self.store.key(KeyOf::Report(&report_id)).await?;
        let reported = sealed::open_report(&report_key, &report.details)?;
        let now = self.clock.now();
        let request_id = uuid::Uuid::now_v7().to_string();
        let key = self.store.new_key(KeyOf::Request(&request_id), now).await?;
        // The reporter is the one to tell when the data is gone.
        let details = Details {
            notes: Some(format!("child report {report_id}")),
            operator_reference: Some(reference),
            contact_email: Some(reported.reporter_contact),
            child_report: Some(report_id.clone()),
            ..Details::default()
        };
        let due = children::erasure_due(regime, report.received_at, now);
        let tasks = self.tasks(
            &request_id,
            RequestKind::Erasure,
            children::REPORT_PRIORITY,
            now,
        );
        let row = request::Model {
            request_id: request_id.clone(),
            client_reference: None,
            kind: RequestKind::Erasure.as_str_name().to_owned(),
            regime: regime.as_str_name().to_owned(),
            subject_id: Some(subject.to_string()),
            status: RequestStatus::InProgress,
            priority: children::REPORT_PRIORITY,
            received_at: report.received_at,
            verified_at: Some(now),
            due_at: due,
            original_due_at: due,
            extension_reason: None,
            confirm_by: None,
            closed_at: None,
            outcome_reason: None,
            wrapped_key: Vec::new(),
            details: sealed::seal_details(&key, &details)?,
            trace_parent: pdm_runtime::propagation::current_traceparent(),
            package_expires_at: None,
            updated_at: now,
            deletion_reason: None,
            subject_ref: None,
            forgotten_at: None,
        };
        if !self
            .store
            .confirm_child_report(&report_id, &subject, row, tasks, now)
            .await?
        {
            return Err(RightsError::NotAllowed(
                "the report was already confirmed".into(),
            ));
        }
        tracing::info!(report_id = %report_id, request_id = %request_id, "child report confirmed: erasure queued first");
        self.wake.notify_one();
        let _ = self.changes.send(request_id.clone());
        let report = self
            .store
            .child_report(&report_id)
            .await?
            .ok_or(RightsError::NotFound)?;
        Ok((
            self.report_for_team(report).await?,
            self.load(&request_id).await?,
        ))
    }

    /// Lists reports for the privacy team.
    pub(super) async fn list_child_reports(
        &self,
        r: pb::ListChildReportsRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::ListChildReportsResponse> {
        let mut v = FieldViolations::new();
        if !(0..=500).contains(&r.page_size) {
            v.add("page_size", "0 to 500");
        }
        let after = if r.page_token.is_empty() {
            None
        } else {
            let found = match uuid::Uuid::parse_str(&r.page_token) {
                Ok(id) => {
                    self.store
                        .child_report(&id.hyphenated().to_string())
                        .await?
                }
                Err(_) => None,
            };
            match found {
                Some(row) => Some((row.received_at, row.report_id)),
                None => {
                    v.add("page_token", "not a token from a previous page");
                    None
                }
            }
        };
        v.finish().map_err(RightsError::Invalid)?;
        super::rights::privacy_team_only(caller, "ListChildReports")?;
        let limit = if r.page_size == 0 {
            100
        } else {
            u64::try_from(r.page_size).unwrap_or(100)
        };
        let rows = self
            .store
            .child_reports(r.waiting_only, after, limit)
            .await?;
        let next_page_token = if u64::try_from(rows.len()).unwrap_or(0) == limit {
            rows.last().map(|r| r.report_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let mut reports = Vec::with_capacity(rows.len());
        for row in rows {
            reports.push(self.report_for_team(row).await?);
        }
        Ok(pb::ListChildReportsResponse {
            reports,
            next_page_token,
        })
    }

    /// A report as the privacy team sees it, opened; a report forgotten at the end of its
    /// proof period has no key left and shows no details.
    async fn report_for_team(&self, row: child_report::Model) -> Result<pb::ChildReport> {
        let details = match self.store.find_key(KeyOf::Report(&row.report_id)).await? {
            Some(key) => sealed::open_report(&key, &row.details)?,
            None => ChildReportDetails::default(),
        };
        Ok(pb::ChildReport {
            report_id: row.report_id,
            status: pb::ChildReportStatus::from(row.status) as i32,
            received_at: Some(timestamp(row.received_at)),
            confirmed_at: row.confirmed_at.map(timestamp),
            erasure_request_id: row.request_id.unwrap_or_default(),
            subject_id: row.subject_id.unwrap_or_default(),
            email: details.email.unwrap_or_default(),
            reporter_contact: details.reporter_contact,
            notes: details.notes.unwrap_or_default(),
        })
    }
}
