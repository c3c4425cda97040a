//! Validation of the assessments' requests: every field checked, every problem reported
//! together as a field violation, the result a typed value. The limits are the proto's
//! (`proto/pdm/incidents/v1/assessments.proto`).

use chrono::{DateTime, Utc};
use pdm_proto::incidents::v1::{self as pb, AssessmentOutcome, ResidualRisk as PbResidual};
use pdm_runtime::text::TextRule;

use crate::api::check::Check;
use crate::{
    domain::assessment::{self, AssessmentDetails, Outcome, ResidualRisk},
    error::IncidentsError,
};

/// The title.
pub const TITLE: TextRule = TextRule::line(200);
/// The processing described, and the DPO's advice.
pub const LONG: TextRule = TextRule::lines(10_000);
/// Each risk and each measure.
pub const ITEM: TextRule = TextRule::lines(2_000);
/// The reasons (advice not followed, review late).
pub const REASON: TextRule = TextRule::lines(4_000);
/// The actor.
pub const ACTOR: TextRule = TextRule::line(200);
/// Most purposes.
pub const MAX_PURPOSES: usize = 20;
/// Most data categories.
pub const MAX_CATEGORIES: usize = 50;
/// Most risks, and most measures.
pub const MAX_ITEMS: usize = 50;
/// Largest page.
pub const MAX_PAGE: i32 = 500;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u64 = 100;

impl Check {
    /// Texts: `min` to `max` items, each by `rule` and not empty.
    fn items(
        &mut self,
        field: &str,
        raw: &[String],
        min: usize,
        max: usize,
    ) -> Option<Vec<String>> {
        if raw.len() < min {
            self.add(field, format!("at least {min}"));
            return None;
        }
        if raw.len() > max {
            self.add(field, format!("at most {max} items"));
            return None;
        }
        let mut items = Vec::new();
        let mut ok = true;
        for (i, item) in raw.iter().enumerate() {
            match self.text(&format!("{field}[{i}]"), ITEM, item, true) {
                Some(item) => items.push(item),
                None => ok = false,
            }
        }
        ok.then_some(items)
    }

    /// An assessment id (a UUID).
    fn assessment_id(&mut self, field: &str, raw: &str) -> Option<String> {
        self.uuid(field, raw, "assessment")
    }

    /// The details of a RecordAssessment, recorded at `now`.
    fn assessment(
        &mut self,
        raw: Option<&pb::AssessmentDetails>,
        now: DateTime<Utc>,
    ) -> Option<AssessmentDetails> {
        let Some(d) = raw else {
            self.add("details", "required");
            return None;
        };
        let title = self.text("details.title", TITLE, &d.title, true);
        let processing = self.text("details.processing", LONG, &d.processing, true);
        let purposes = self.keys("details.purposes", &d.purposes, 0, MAX_PURPOSES);
        let data_categories = self.keys(
            "details.data_categories",
            &d.data_categories,
            0,
            MAX_CATEGORIES,
        );
        let risks = self.items("details.risks", &d.risks, 1, MAX_ITEMS);
        let measures = self.items("details.measures", &d.measures, 0, MAX_ITEMS);
        let residual_risk = match PbResidual::try_from(d.residual_risk) {
            Ok(PbResidual::Low) => Some(ResidualRisk::Low),
            Ok(PbResidual::Medium) => Some(ResidualRisk::Medium),
            Ok(PbResidual::High) => Some(ResidualRisk::High),
            _ => {
                self.add("details.residual_risk", "LOW, MEDIUM or HIGH");
                None
            }
        };
        let dpo_advice = self.text("details.dpo_advice", LONG, &d.dpo_advice, true);
        let advice_departure_reason = self.text(
            "details.advice_departure_reason",
            REASON,
            &d.advice_departure_reason,
            !d.dpo_advice_followed,
        );
        if d.dpo_advice_followed
            && advice_departure_reason
                .as_ref()
                .is_some_and(|r| !r.is_empty())
        {
            self.add(
                "details.advice_departure_reason",
                "only when the DPO's advice was not followed",
            );
        }
        let outcome = match AssessmentOutcome::try_from(d.outcome) {
            Ok(AssessmentOutcome::Proceed) => Some(Outcome::Proceed),
            Ok(AssessmentOutcome::ProceedWithMeasures) => Some(Outcome::ProceedWithMeasures),
            Ok(AssessmentOutcome::ConsultAuthority) => Some(Outcome::ConsultAuthority),
            Ok(AssessmentOutcome::DoNotProceed) => Some(Outcome::DoNotProceed),
            _ => {
                self.add(
                    "details.outcome",
                    "PROCEED, PROCEED_WITH_MEASURES, CONSULT_AUTHORITY or DO_NOT_PROCEED",
                );
                None
            }
        };
        if let (Some(residual), Some(outcome), Some(measures)) =
            (residual_risk, outcome, measures.as_ref())
            && let Err(why) = assessment::check_outcome(residual, outcome, measures.len())
        {
            self.add("details.outcome", why);
        }

        let assessed_at = match self.time("details.assessed_at", d.assessed_at.as_ref()) {
            Some(t) if t > now => {
                self.add("details.assessed_at", "must not be in the future");
                None
            }
            t => t,
        };
        let next_review_at = self.time("details.next_review_at", d.next_review_at.as_ref());
        let late_review_reason = self.text(
            "details.late_review_reason",
            REASON,
            &d.late_review_reason,
            false,
        );
        if let (Some(assessed), Some(next), Some(reason)) =
            (assessed_at, next_review_at, late_review_reason.as_ref())
        {
            if let Err(problem) = assessment::check_review(assessed, next, now, !reason.is_empty())
            {
                self.add("details.next_review_at", problem.describe());
            } else if !reason.is_empty() && assessment::late_reason_misplaced(next, now) {
                self.add(
                    "details.late_review_reason",
                    "only when next_review_at has already passed",
                );
            }
        }

        Some(AssessmentDetails {
            title: title?,
            processing: processing?,
            purposes: purposes?,
            data_categories: data_categories?,
            risks: risks?,
            measures: measures?,
            residual_risk: residual_risk?,
            dpo_advice: dpo_advice?,
            dpo_advice_followed: d.dpo_advice_followed,
            advice_departure_reason: advice_departure_reason?,
            outcome: outcome?,
            assessed_at: assessed_at?,
            next_review_at: next_review_at?,
            late_review_reason: late_review_reason?,
        })
    }
}

/// A validated RecordAssessment.
#[derive(Debug)]
pub struct Record {
    /// The assessment revised and the version it was made from; `None` for a new one.
    pub revises: Option<(String, i32)>,
    /// The details.
    pub details: AssessmentDetails,
    /// Who.
    pub actor: String,
}

/// Checks a RecordAssessment made at `now`.
pub fn record(
    req: &pb::RecordAssessmentRequest,
    now: DateTime<Utc>,
) -> Result<Record, IncidentsError> {
    let mut check = Check::default();
    let revises = if req.assessment_id.trim().is_empty() {
        if req.expected_version != 0 {
            check.add("expected_version", "0 for a new assessment");
        }
        Some(None)
    } else {
        let id = check.assessment_id("assessment_id", &req.assessment_id);
        if req.expected_version < 1 {
            check.add(
                "expected_version",
                "required for a revision: the version it was made from",
            );
        }
        id.map(|id| Some((id, req.expected_version)))
    };
    let details = check.assessment(req.details.as_ref(), now);
    let actor = check.text("actor", ACTOR, &req.actor, true);
    check.finish()?;
    match (revises, details, actor) {
        (Some(revises), Some(details), Some(actor)) => Ok(Record {
            revises,
            details,
            actor,
        }),
        _ => Err(IncidentsError::Internal("validated request incomplete")),
    }
}

/// Checks an assessment id.
pub fn id(field: &str, raw: &str) -> Result<String, IncidentsError> {
    let mut check = Check::default();
    let id = check.assessment_id(field, raw);
    check.finish()?;
    id.ok_or(IncidentsError::Internal("validated request incomplete"))
}

/// A validated ListAssessments.
#[derive(Debug)]
pub struct List {
    /// After this id.
    pub before: Option<String>,
    /// Page size.
    pub limit: u64,
}

/// Checks a ListAssessments.
pub fn list(req: &pb::ListAssessmentsRequest) -> Result<List, IncidentsError> {
    let mut check = Check::default();
    if !(0..=MAX_PAGE).contains(&req.page_size) {
        check.add("page_size", format!("from 0 to {MAX_PAGE}"));
    }
    let before = if req.page_token.is_empty() {
        Some(None)
    } else {
        check.assessment_id("page_token", &req.page_token).map(Some)
    };
    check.finish()?;
    let limit = match u64::try_from(req.page_size) {
        Ok(0) | Err(_) => DEFAULT_PAGE,
        Ok(n) => n,
    };
    Ok(List {
        before: before.ok_or(IncidentsError::Internal("validated request incomplete"))?,
        limit,
    })
}
