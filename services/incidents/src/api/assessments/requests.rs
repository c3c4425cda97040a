//! Validation of the assessments' requests: every field checked, every problem reported
//! together as a field violation, the result a typed value. The limits are the proto's
//! (`proto/pdm/incidents/v1/assessments.proto`).

use chrono::{DateTime, Utc};
use pdm_proto::incidents::v1::{self as pb, AssessmentOutcome, ResidualRisk as PbResidual};
use pdm_runtime::{
    FieldViolations,
    convert::from_timestamp,
    text::{TextRule, refuse_card_number},
};

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

const KEY_RULE: &str = "lowercase letters, digits, '_', '.', '-'; 1-64 characters";

fn is_key(item: &str) -> bool {
    !item.is_empty()
        && item.len() <= 64
        && item.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Collects violations.
#[derive(Debug, Default)]
struct Check {
    v: FieldViolations,
}

impl Check {
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    fn text(&mut self, field: &str, rule: TextRule, raw: &str, required: bool) -> Option<String> {
        let value = if required {
            rule.required(raw)
        } else {
            rule.optional(raw)
        };
        self.v.check(field, value)
    }

    /// Keys: at most `max`, each a key without a card number, no duplicates.
    fn keys(&mut self, field: &str, raw: &[String], max: usize) -> Option<Vec<String>> {
        if raw.len() > max {
            self.add(field, format!("at most {max} items"));
            return None;
        }
        let mut keys: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, item) in raw.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let item = item.trim();
            if !is_key(item) {
                self.add(at, KEY_RULE);
            } else if refuse_card_number(item).is_err() {
                self.add(at, "must not contain a payment card number");
            } else if keys.iter().any(|k| k == item) {
                self.add(at, "appears twice");
            } else {
                keys.push(item.to_owned());
                continue;
            }
            ok = false;
        }
        ok.then_some(keys)
    }

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

    fn time(&mut self, field: &str, raw: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
        let Some(raw) = raw else {
            self.add(field, "required");
            return None;
        };
        let time = from_timestamp(raw);
        if time.is_none() {
            self.add(field, "not a valid time");
        }
        time
    }

    fn finish(self) -> Result<(), IncidentsError> {
        self.v.finish().map_err(IncidentsError::Invalid)
    }

    /// An assessment id (a UUID).
    fn id(&mut self, field: &str, raw: &str) -> Option<String> {
        match uuid::Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id.to_string()),
            Err(_) => {
                self.add(
                    field,
                    if raw.trim().is_empty() {
                        "required"
                    } else {
                        "not an assessment id"
                    },
                );
                None
            }
        }
    }

    /// The details of a RecordAssessment, recorded at `now`.
    fn details(
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
        let purposes = self.keys("details.purposes", &d.purposes, MAX_PURPOSES);
        let data_categories = self.keys(
            "details.data_categories",
            &d.data_categories,
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
        let id = check.id("assessment_id", &req.assessment_id);
        if req.expected_version < 1 {
            check.add(
                "expected_version",
                "required for a revision: the version it was made from",
            );
        }
        id.map(|id| Some((id, req.expected_version)))
    };
    let details = check.details(req.details.as_ref(), now);
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
    let id = check.id(field, raw);
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
        check.id("page_token", &req.page_token).map(Some)
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
