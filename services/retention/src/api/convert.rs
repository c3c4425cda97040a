//! Rows to protobuf messages.

use pdm_proto::{
    common::v1::LegalBasis,
    retention::v1::{self as pb, RunStatus},
    subject::v1::{PurgeResult, PurgeRule, RetentionTrigger},
};
use pdm_runtime::convert::timestamp;

use crate::store::{
    CategoryCount, RuleRecord, RunWithResults,
    entities::{legal_hold, policy_version, service_result},
};

fn list<T: serde::de::DeserializeOwned>(raw: &str) -> Vec<T> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// A period as stored.
pub fn period(row: &policy_version::Model) -> pb::Period {
    pb::Period {
        years: row.years,
        months: row.months,
        days: row.days,
    }
}

/// A trigger name as stored.
pub fn trigger(name: &str) -> i32 {
    RetentionTrigger::from_str_name(name).unwrap_or_default() as i32
}

pub fn policy(row: policy_version::Model) -> pb::Policy {
    pb::Policy {
        period: Some(period(&row)),
        trigger: trigger(&row.trigger),
        legal_basis: LegalBasis::from_str_name(&row.legal_basis).unwrap_or_default() as i32,
        category: row.category,
        description: row.description,
        version: row.version,
        effective_from: Some(timestamp(row.effective_from)),
        changed_by: row.changed_by,
    }
}

pub fn hold(row: legal_hold::Model) -> pb::LegalHold {
    pb::LegalHold {
        hold_id: row.hold_id,
        subject_id: row.subject_id,
        category: row.category,
        reason: row.reason,
        reference: row.reference,
        placed_by: row.placed_by,
        placed_at: Some(timestamp(row.placed_at)),
        released_at: row.released_at.map(timestamp),
        released_by: row.released_by.unwrap_or_default(),
    }
}

pub fn service_result(row: &service_result::Model) -> pb::ServiceResult {
    pb::ServiceResult {
        service: row.service.clone(),
        ok: row.ok,
        results: list::<CategoryCount>(&row.results)
            .into_iter()
            .map(|c| PurgeResult {
                category: c.category,
                purged: c.purged,
                held: c.held,
                hold_ids: c.hold_ids,
            })
            .collect(),
        error: row.error.clone(),
        duration_ms: row.duration_ms,
        attempts: row.attempts,
    }
}

pub fn run(run: &RunWithResults) -> pb::PurgeRun {
    let r = &run.run;
    pb::PurgeRun {
        run_id: r.run_id.clone(),
        dry_run: r.dry_run,
        status: RunStatus::from_str_name(&r.status).unwrap_or_default() as i32,
        as_of: Some(timestamp(r.as_of)),
        started_at: Some(timestamp(r.started_at)),
        finished_at: r.finished_at.map(timestamp),
        services: run.services.iter().map(service_result).collect(),
        triggered_by: r.triggered_by.clone(),
        rules: list::<RuleRecord>(&r.rules)
            .into_iter()
            .map(|rule| PurgeRule {
                trigger: trigger(&rule.trigger),
                category: rule.category,
                cutoff: Some(timestamp(rule.cutoff)),
            })
            .collect(),
        hold_ids: list(&r.hold_ids),
    }
}
