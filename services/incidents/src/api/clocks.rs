//! Each regime's authority deadline of an incident, where it stands, and which incidents
//! are overdue: the domain's rules applied to stored incidents.

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        deadline::{self, DeadlineState},
        notification::Phase,
        regime::Regime,
    },
    store::Stored,
};

/// One regime's clock for an incident.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// Regime key.
    pub regime: String,
    /// The authority.
    pub authority: String,
    /// When it falls.
    pub due_at: DateTime<Utc>,
    /// Where it stands.
    pub state: DeadlineState,
    /// When the initial notification was sent.
    pub notified_at: Option<DateTime<Utc>>,
}

/// The deadlines of `incident` at `now`, in the order of its regimes (regimes no longer
/// in the table are left out: they have no clock).
pub fn deadlines(incident: &Stored, table: &[Regime], now: DateTime<Utc>) -> Vec<Deadline> {
    incident
        .details
        .regimes
        .iter()
        .filter_map(|key| table.iter().find(|r| &r.key == key))
        .map(|regime| {
            let due_at = deadline::due(incident.details.aware_at, regime.authority_deadline_hours);
            let notified_at = incident
                .notifications
                .iter()
                .filter(|n| {
                    n.regime == regime.key && Phase::parse(&n.phase) == Some(Phase::Initial)
                })
                .map(|n| n.sent_at)
                .min();
            Deadline {
                regime: regime.key.clone(),
                authority: regime.authority.clone(),
                due_at,
                state: deadline::state(due_at, incident.details.risk, notified_at, now),
                notified_at,
            }
        })
        .collect()
}

/// The open incidents among `incidents` with an overdue deadline at `now`, the oldest
/// overdue deadline first.
pub fn overdue(incidents: Vec<Stored>, table: &[Regime], now: DateTime<Utc>) -> Vec<Stored> {
    let mut late: Vec<(DateTime<Utc>, Stored)> = incidents
        .into_iter()
        .filter_map(|incident| {
            let first = deadlines(&incident, table, now)
                .into_iter()
                .filter(|d| d.state == DeadlineState::Overdue)
                .map(|d| d.due_at)
                .min()?;
            Some((first, incident))
        })
        .collect();
    late.sort_by_key(|(due, _)| *due);
    late.into_iter().map(|(_, incident)| incident).collect()
}
