//! Request validation: every field checked, every problem reported together as a field
//! violation, the result a typed value the handlers use as it is. The limits are the
//! proto's (`proto/pdm/incidents/v1/incidents.proto`).

use chrono::{DateTime, Utc};
use pdm_proto::incidents::v1::{self as pb, Nature as PbNature, Phase as PbPhase, RiskLevel};
use pdm_runtime::{
    convert::from_timestamp,
    text::{TextRule, refuse_card_number},
};

pub use super::check::Check;
use crate::{
    domain::{
        incident::{Details, Nature, Risk, Status},
        notification::Phase,
        regime::Regime,
    },
    error::IncidentsError,
};

/// The title.
pub const TITLE: TextRule = TextRule::line(200);
/// The description.
pub const DESCRIPTION: TextRule = TextRule::lines(10_000);
/// Consequences, measures, risk reasoning, closure reason, delay reason.
pub const LONG_TEXT: TextRule = TextRule::lines(4_000);
/// Actor and reference.
pub const LINE: TextRule = TextRule::line(200);
/// A notification's content.
pub const CONTENT: TextRule = TextRule::lines(20_000);
/// Most data categories.
pub const MAX_CATEGORIES: usize = 50;
/// Most services.
pub const MAX_SERVICES: usize = 20;
/// Most people an approximate count may name.
pub const MAX_SUBJECTS: i64 = 10_000_000_000;
/// Most records an approximate count may name.
pub const MAX_RECORDS: i64 = 1_000_000_000_000;
/// Largest page.
pub const MAX_PAGE: i32 = 500;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u64 = 100;

impl Check {
    /// The actor of a change.
    pub fn actor(&mut self, raw: &str) -> Option<String> {
        self.text("actor", LINE, raw, true)
    }

    /// An incident id (a UUID).
    pub fn incident_id(&mut self, field: &str, raw: &str) -> Option<String> {
        self.uuid(field, raw, "incident")
    }

    /// The details of an OpenIncident or AssessIncident.
    pub fn details(
        &mut self,
        raw: Option<&pb::IncidentDetails>,
        table: &[Regime],
        now: DateTime<Utc>,
    ) -> Option<Details> {
        let Some(d) = raw else {
            self.add("details", "required");
            return None;
        };
        let title = self.text("details.title", TITLE, &d.title, true);
        let detected_at = self.past_time("details.detected_at", d.detected_at.as_ref(), now);
        let aware_at = self.past_time("details.aware_at", d.aware_at.as_ref(), now);
        if let (Some(detected), Some(aware)) = (detected_at, aware_at)
            && aware < detected
        {
            self.add("details.aware_at", "must not be before detected_at");
        }
        let description = self.text("details.description", DESCRIPTION, &d.description, true);

        let mut natures: Vec<Nature> = Vec::new();
        if d.natures.is_empty() {
            self.add("details.natures", "at least one");
        }
        for (i, raw) in d.natures.iter().enumerate() {
            let at = format!("details.natures[{i}]");
            let nature = match PbNature::try_from(*raw) {
                Ok(PbNature::Confidentiality) => Nature::Confidentiality,
                Ok(PbNature::Integrity) => Nature::Integrity,
                Ok(PbNature::Availability) => Nature::Availability,
                _ => {
                    self.add(at, "CONFIDENTIALITY, INTEGRITY or AVAILABILITY");
                    continue;
                }
            };
            if natures.contains(&nature) {
                self.add(at, "appears twice");
            } else {
                natures.push(nature);
            }
        }
        natures.sort();

        let data_categories = self
            .keys(
                "details.data_categories",
                &d.data_categories,
                1,
                MAX_CATEGORIES,
            )
            .unwrap_or_default();
        let services = self
            .keys("details.services", &d.services, 0, MAX_SERVICES)
            .unwrap_or_default();

        let window_start = self.past_time("details.window_start", d.window_start.as_ref(), now);
        let window_end = match d.window_end.as_ref() {
            None => Some(None),
            Some(raw) => match from_timestamp(raw) {
                None => {
                    self.add("details.window_end", "not a valid time");
                    None
                }
                Some(end) if window_start.is_some_and(|start| end < start) => {
                    self.add("details.window_end", "must not be before window_start");
                    None
                }
                Some(end) => Some(Some(end)),
            },
        };
        if !(0..=MAX_SUBJECTS).contains(&d.approximate_subjects) {
            self.add(
                "details.approximate_subjects",
                format!("from 0 to {MAX_SUBJECTS}"),
            );
        }
        if !(0..=MAX_RECORDS).contains(&d.approximate_records) {
            self.add(
                "details.approximate_records",
                format!("from 0 to {MAX_RECORDS}"),
            );
        }
        let likely_consequences = self.text(
            "details.likely_consequences",
            LONG_TEXT,
            &d.likely_consequences,
            false,
        );
        let measures_taken = self.text(
            "details.measures_taken",
            LONG_TEXT,
            &d.measures_taken,
            false,
        );
        let risk = match RiskLevel::try_from(d.risk) {
            Ok(RiskLevel::Unspecified) => Some(Risk::Unassessed),
            Ok(RiskLevel::Unlikely) => Some(Risk::Unlikely),
            Ok(RiskLevel::Risk) => Some(Risk::Risk),
            Ok(RiskLevel::High) => Some(Risk::High),
            Err(_) => {
                self.add(
                    "details.risk",
                    "UNLIKELY, RISK or HIGH (unset: not assessed)",
                );
                None
            }
        };
        let assessed = risk.is_some_and(|r| r != Risk::Unassessed);
        let risk_reasoning = self.text(
            "details.risk_reasoning",
            LONG_TEXT,
            &d.risk_reasoning,
            assessed,
        );

        let mut regimes: Vec<String> = Vec::new();
        if d.regimes.is_empty() {
            self.add("details.regimes", "at least one");
        }
        for (i, raw) in d.regimes.iter().enumerate() {
            let at = format!("details.regimes[{i}]");
            let key = raw.trim();
            if !table.iter().any(|r| r.key == key) {
                let known: Vec<&str> = table.iter().map(|r| r.key.as_str()).collect();
                self.add(at, format!("one of {}", known.join(", ")));
            } else if regimes.iter().any(|r| r == key) {
                self.add(at, "appears twice");
            } else {
                regimes.push(key.to_owned());
            }
        }

        Some(Details {
            title: title?,
            detected_at: detected_at?,
            aware_at: aware_at?,
            description: description?,
            natures,
            data_categories,
            services,
            window_start: window_start?,
            window_end: window_end?,
            approximate_subjects: d.approximate_subjects,
            approximate_records: d.approximate_records,
            likely_consequences: likely_consequences?,
            measures_taken: measures_taken?,
            risk: risk?,
            risk_reasoning: risk_reasoning?,
            regimes,
        })
    }
}

/// A validated OpenIncident.
#[derive(Debug)]
pub struct Open {
    /// Details.
    pub details: Details,
    /// Who.
    pub actor: String,
}

/// Checks an OpenIncident.
pub fn open(
    req: &pb::OpenIncidentRequest,
    table: &[Regime],
    now: DateTime<Utc>,
) -> Result<Open, IncidentsError> {
    let mut check = Check::default();
    let details = check.details(req.details.as_ref(), table, now);
    let actor = check.actor(&req.actor);
    finish(check, || {
        Some(Open {
            details: details?,
            actor: actor?,
        })
    })
}

/// A validated AssessIncident.
#[derive(Debug)]
pub struct Assess {
    /// Incident.
    pub incident_id: String,
    /// Details.
    pub details: Details,
    /// Who.
    pub actor: String,
    /// The version the change is for.
    pub expected_version: Option<i32>,
}

/// Checks an AssessIncident.
pub fn assess(
    req: &pb::AssessIncidentRequest,
    table: &[Regime],
    now: DateTime<Utc>,
) -> Result<Assess, IncidentsError> {
    let mut check = Check::default();
    let incident_id = check.incident_id("incident_id", &req.incident_id);
    let details = check.details(req.details.as_ref(), table, now);
    let actor = check.actor(&req.actor);
    if req.expected_version < 0 {
        check.add("expected_version", "0 (any) or a version number");
    }
    finish(check, || {
        Some(Assess {
            incident_id: incident_id?,
            details: details?,
            actor: actor?,
            expected_version: (req.expected_version > 0).then_some(req.expected_version),
        })
    })
}

/// A validated RecordAuthorityNotification (what can be checked without the incident).
#[derive(Debug)]
pub struct Notify {
    /// Incident.
    pub incident_id: String,
    /// Regime key (checked against the incident's regimes when it is read).
    pub regime: String,
    /// Phase.
    pub phase: Phase,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// What was sent.
    pub content: String,
    /// Reference.
    pub reference: String,
    /// Why late.
    pub delay_reason: String,
    /// Who.
    pub actor: String,
}

/// Checks a RecordAuthorityNotification.
pub fn notify(
    req: &pb::RecordAuthorityNotificationRequest,
    now: DateTime<Utc>,
) -> Result<Notify, IncidentsError> {
    let mut check = Check::default();
    let incident_id = check.incident_id("incident_id", &req.incident_id);
    let regime = req.regime.trim();
    if regime.is_empty() {
        check.add("regime", "required");
    } else if regime.len() > 32 || refuse_card_number(regime).is_err() {
        check.add("regime", "one of the incident's regimes");
    }
    let phase = match PbPhase::try_from(req.phase) {
        Ok(PbPhase::Initial) => Some(Phase::Initial),
        Ok(PbPhase::FollowUp) => Some(Phase::FollowUp),
        Ok(PbPhase::Final) => Some(Phase::Final),
        _ => {
            check.add("phase", "INITIAL, FOLLOW_UP or FINAL");
            None
        }
    };
    let sent_at = check.past_time("sent_at", req.sent_at.as_ref(), now);
    let content = check.text("content", CONTENT, &req.content, true);
    let reference = check.text("reference", LINE, &req.reference, false);
    let delay_reason = check.text("delay_reason", LONG_TEXT, &req.delay_reason, false);
    let actor = check.actor(&req.actor);
    finish(check, || {
        Some(Notify {
            incident_id: incident_id?,
            regime: regime.to_owned(),
            phase: phase?,
            sent_at: sent_at?,
            content: content?,
            reference: reference?,
            delay_reason: delay_reason?,
            actor: actor?,
        })
    })
}

/// A validated CloseIncident.
#[derive(Debug)]
pub struct Close {
    /// Incident.
    pub incident_id: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
}

/// Checks a CloseIncident.
pub fn close(req: &pb::CloseIncidentRequest) -> Result<Close, IncidentsError> {
    let mut check = Check::default();
    let incident_id = check.incident_id("incident_id", &req.incident_id);
    let reason = check.text("closure_reason", LONG_TEXT, &req.closure_reason, true);
    let actor = check.actor(&req.actor);
    finish(check, || {
        Some(Close {
            incident_id: incident_id?,
            reason: reason?,
            actor: actor?,
        })
    })
}

/// A validated ListIncidents.
#[derive(Debug)]
pub struct List {
    /// Only this status.
    pub status: Option<Status>,
    /// After this id.
    pub before: Option<String>,
    /// Page size.
    pub limit: u64,
}

/// Checks a ListIncidents.
pub fn list(req: &pb::ListIncidentsRequest) -> Result<List, IncidentsError> {
    let mut check = Check::default();
    let status = match pb::Status::try_from(req.status) {
        Ok(pb::Status::Unspecified) => Some(None),
        Ok(pb::Status::Open) => Some(Some(Status::Open)),
        Ok(pb::Status::Closed) => Some(Some(Status::Closed)),
        Err(_) => {
            check.add("status", "OPEN or CLOSED (unset: any)");
            None
        }
    };
    if !(0..=MAX_PAGE).contains(&req.page_size) {
        check.add("page_size", format!("from 0 to {MAX_PAGE}"));
    }
    let before = if req.page_token.is_empty() {
        Some(None)
    } else {
        check.incident_id("page_token", &req.page_token).map(Some)
    };
    let limit = match u64::try_from(req.page_size) {
        Ok(0) | Err(_) => DEFAULT_PAGE,
        Ok(n) => n,
    };
    finish(check, || {
        Some(List {
            status: status?,
            before: before?,
            limit,
        })
    })
}

/// The checked value when nothing was wrong.
fn finish<T>(check: Check, build: impl FnOnce() -> Option<T>) -> Result<T, IncidentsError> {
    check.finish()?;
    build().ok_or(IncidentsError::Internal("validated request incomplete"))
}
