//! Stored and domain values to their protobuf messages.

use chrono::{DateTime, Utc};
use pdm_proto::incidents::v1::{self as pb, DeadlineState as PbState, Nature as PbNature};
use pdm_runtime::convert::timestamp;

use super::clocks::{self, Deadline};
use crate::{
    domain::{
        deadline::DeadlineState,
        incident::{Change, Details, Nature, Risk, Status},
        notification::Phase,
        regime::Regime,
    },
    error::{IncidentsError, Result},
    store::{
        Stored,
        entities::{authority_notification, incident_version},
        read_details,
    },
};

fn status(s: Status) -> pb::Status {
    match s {
        Status::Open => pb::Status::Open,
        Status::Closed => pb::Status::Closed,
    }
}

fn stored_status(raw: &str) -> Result<pb::Status> {
    Status::parse(raw)
        .map(status)
        .ok_or(IncidentsError::Internal("stored status unknown"))
}

/// The details' message.
pub fn details(d: &Details) -> pb::IncidentDetails {
    pb::IncidentDetails {
        title: d.title.clone(),
        detected_at: Some(timestamp(d.detected_at)),
        aware_at: Some(timestamp(d.aware_at)),
        description: d.description.clone(),
        natures: d
            .natures
            .iter()
            .map(|n| match n {
                Nature::Confidentiality => PbNature::Confidentiality as i32,
                Nature::Integrity => PbNature::Integrity as i32,
                Nature::Availability => PbNature::Availability as i32,
            })
            .collect(),
        data_categories: d.data_categories.clone(),
        services: d.services.clone(),
        window_start: Some(timestamp(d.window_start)),
        window_end: d.window_end.map(timestamp),
        approximate_subjects: d.approximate_subjects,
        approximate_records: d.approximate_records,
        likely_consequences: d.likely_consequences.clone(),
        measures_taken: d.measures_taken.clone(),
        risk: match d.risk {
            Risk::Unassessed => pb::RiskLevel::Unspecified,
            Risk::Unlikely => pb::RiskLevel::Unlikely,
            Risk::Risk => pb::RiskLevel::Risk,
            Risk::High => pb::RiskLevel::High,
        } as i32,
        risk_reasoning: d.risk_reasoning.clone(),
        regimes: d.regimes.clone(),
    }
}

fn deadline(d: Deadline) -> pb::AuthorityDeadline {
    pb::AuthorityDeadline {
        regime: d.regime,
        authority: d.authority,
        due_at: Some(timestamp(d.due_at)),
        state: match d.state {
            DeadlineState::Pending => PbState::Pending,
            DeadlineState::Met => PbState::Met,
            DeadlineState::Late => PbState::Late,
            DeadlineState::Overdue => PbState::Overdue,
            DeadlineState::NotRequired => PbState::NotRequired,
        } as i32,
        notified_at: d.notified_at.map(timestamp),
    }
}

/// A notification's message.
pub fn notification(n: &authority_notification::Model) -> pb::AuthorityNotification {
    pb::AuthorityNotification {
        notification_id: n.notification_id.clone(),
        regime: n.regime.clone(),
        phase: match Phase::parse(&n.phase) {
            Some(Phase::Initial) => pb::Phase::Initial,
            Some(Phase::FollowUp) => pb::Phase::FollowUp,
            Some(Phase::Final) => pb::Phase::Final,
            None => pb::Phase::Unspecified,
        } as i32,
        sent_at: Some(timestamp(n.sent_at)),
        content: n.content.clone(),
        reference: n.reference.clone(),
        delay_reason: n.delay_reason.clone(),
        recorded_at: Some(timestamp(n.recorded_at)),
        recorded_by: n.recorded_by.clone(),
    }
}

/// An incident's message at `now` (its clocks as they then stand).
pub fn incident(s: &Stored, table: &[Regime], now: DateTime<Utc>) -> Result<pb::Incident> {
    Ok(pb::Incident {
        incident_id: s.incident.incident_id.clone(),
        version: s.incident.version,
        status: stored_status(&s.incident.status)? as i32,
        details: Some(details(&s.details)),
        deadlines: clocks::deadlines(s, table, now)
            .into_iter()
            .map(deadline)
            .collect(),
        notifications: s.notifications.iter().map(notification).collect(),
        opened_at: Some(timestamp(s.incident.opened_at)),
        updated_at: Some(timestamp(s.incident.updated_at)),
        closed_at: s.incident.closed_at.map(timestamp),
        closure_reason: s.incident.closure_reason.clone().unwrap_or_default(),
    })
}

/// A version's message.
pub fn version(v: &incident_version::Model) -> Result<pb::IncidentVersion> {
    let change = match Change::parse(&v.change) {
        Some(Change::Opened) => pb::Change::Opened,
        Some(Change::Assessed) => pb::Change::Assessed,
        Some(Change::AuthorityNotified) => pb::Change::AuthorityNotified,
        Some(Change::Closed) => pb::Change::Closed,
        None => return Err(IncidentsError::Internal("stored change unknown")),
    };
    Ok(pb::IncidentVersion {
        version: v.version,
        change: change as i32,
        changed_by: v.changed_by.clone(),
        changed_at: Some(timestamp(v.changed_at)),
        status: stored_status(&v.status)? as i32,
        details: Some(details(&read_details(&v.details)?)),
        notification_id: v.notification_id.clone().unwrap_or_default(),
        closure_reason: v.closure_reason.clone().unwrap_or_default(),
    })
}

/// A regime's message.
pub fn regime(r: &Regime) -> pb::Regime {
    pb::Regime {
        key: r.key.clone(),
        name: r.name.clone(),
        authority: r.authority.clone(),
        authority_deadline_hours: i32::try_from(r.authority_deadline_hours).unwrap_or(i32::MAX),
    }
}
