//! Stored assessments to their protobuf messages.

use chrono::{DateTime, Utc};
use pdm_proto::incidents::v1::{self as pb, AssessmentOutcome, ResidualRisk as PbResidual};
use pdm_runtime::convert::timestamp;

use crate::{
    domain::assessment::{self, AssessmentDetails, Outcome, ResidualRisk},
    error::Result,
    store::{
        assessments::{StoredAssessment, decode},
        entities::assessment_version,
    },
};

/// The details' message.
pub fn details(d: &AssessmentDetails) -> pb::AssessmentDetails {
    pb::AssessmentDetails {
        title: d.title.clone(),
        processing: d.processing.clone(),
        purposes: d.purposes.clone(),
        data_categories: d.data_categories.clone(),
        risks: d.risks.clone(),
        measures: d.measures.clone(),
        residual_risk: match d.residual_risk {
            ResidualRisk::Low => PbResidual::Low,
            ResidualRisk::Medium => PbResidual::Medium,
            ResidualRisk::High => PbResidual::High,
        } as i32,
        dpo_advice: d.dpo_advice.clone(),
        dpo_advice_followed: d.dpo_advice_followed,
        advice_departure_reason: d.advice_departure_reason.clone(),
        outcome: match d.outcome {
            Outcome::Proceed => AssessmentOutcome::Proceed,
            Outcome::ProceedWithMeasures => AssessmentOutcome::ProceedWithMeasures,
            Outcome::ConsultAuthority => AssessmentOutcome::ConsultAuthority,
            Outcome::DoNotProceed => AssessmentOutcome::DoNotProceed,
        } as i32,
        assessed_at: Some(timestamp(d.assessed_at)),
        next_review_at: Some(timestamp(d.next_review_at)),
        late_review_reason: d.late_review_reason.clone(),
    }
}

/// An assessment's message at `now` (whether its review is overdue then).
pub fn assessment(s: &StoredAssessment, now: DateTime<Utc>) -> pb::Assessment {
    pb::Assessment {
        assessment_id: s.row.assessment_id.clone(),
        version: s.row.version,
        details: Some(details(&s.details)),
        recorded_at: Some(timestamp(s.row.recorded_at)),
        updated_at: Some(timestamp(s.row.updated_at)),
        updated_by: s.row.updated_by.clone(),
        review_overdue: assessment::review_overdue(s.details.next_review_at, now),
    }
}

/// A version's message.
pub fn version(v: &assessment_version::Model) -> Result<pb::AssessmentVersion> {
    Ok(pb::AssessmentVersion {
        version: v.version,
        details: Some(details(&decode(&v.details)?)),
        changed_by: v.changed_by.clone(),
        changed_at: Some(timestamp(v.changed_at)),
    })
}
