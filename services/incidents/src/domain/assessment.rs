//! A data protection impact assessment as the register keeps it (one version), and the
//! rules between its fields: the review window (Art. 35(11): the assessment is reviewed)
//! and what a residual risk allows (Art. 36(1): a high one is not simply accepted).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The longest time from an assessment to its next review: three years (1,096 days, so a
/// leap day in between never makes "three years later" too far).
pub const MAX_REVIEW_DAYS: i64 = 1_096;

/// The risk left once the measures apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidualRisk {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High: the authority is consulted, or the processing does not go ahead.
    High,
}

/// What the assessment concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Go ahead as described.
    Proceed,
    /// Go ahead with the measures listed.
    ProceedWithMeasures,
    /// Consult the supervisory authority first (Art. 36).
    ConsultAuthority,
    /// Do not go ahead.
    DoNotProceed,
}

/// One version of an assessment's content (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentDetails {
    /// Short name of the processing.
    pub title: String,
    /// The processing and its purposes, described.
    pub processing: String,
    /// Purpose keys.
    pub purposes: Vec<String>,
    /// Data category keys.
    pub data_categories: Vec<String>,
    /// Risks found.
    pub risks: Vec<String>,
    /// Measures envisaged.
    pub measures: Vec<String>,
    /// The risk left.
    pub residual_risk: ResidualRisk,
    /// The DPO's advice.
    pub dpo_advice: String,
    /// Whether it was followed.
    pub dpo_advice_followed: bool,
    /// Why not.
    pub advice_departure_reason: String,
    /// The conclusion.
    pub outcome: Outcome,
    /// When assessed.
    pub assessed_at: DateTime<Utc>,
    /// When next reviewed.
    pub next_review_at: DateTime<Utc>,
    /// Why the review date had passed at recording.
    pub late_review_reason: String,
}

/// What is wrong with a review date, as its field violation says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewProblem {
    /// Not after the assessment.
    NotAfterAssessment,
    /// More than [`MAX_REVIEW_DAYS`] after the assessment.
    TooFar,
    /// Already passed, and no reason given.
    PassedWithoutReason,
}

impl ReviewProblem {
    /// The violation's description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotAfterAssessment => "must be after assessed_at",
            Self::TooFar => "at most 1096 days (three years) after assessed_at",
            Self::PassedWithoutReason => {
                "must be in the future; a review date already passed needs late_review_reason"
            }
        }
    }
}

/// Checks a review date recorded at `now`: after the assessment, at most
/// [`MAX_REVIEW_DAYS`] after it, and in the future unless a reason for the lapse is given.
pub fn check_review(
    assessed_at: DateTime<Utc>,
    next_review_at: DateTime<Utc>,
    now: DateTime<Utc>,
    late_reason_given: bool,
) -> Result<(), ReviewProblem> {
    if next_review_at <= assessed_at {
        return Err(ReviewProblem::NotAfterAssessment);
    }
    if next_review_at - assessed_at > Duration::days(MAX_REVIEW_DAYS) {
        return Err(ReviewProblem::TooFar);
    }
    if next_review_at <= now && !late_reason_given {
        return Err(ReviewProblem::PassedWithoutReason);
    }
    Ok(())
}

/// Whether a late-review reason given at `now` is out of place (the date is in the future):
/// a reason that no longer applies would mislead whoever reads the register.
pub fn late_reason_misplaced(next_review_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    next_review_at > now
}

/// Why an outcome does not fit the residual risk and measures, if it does not.
pub fn check_outcome(
    residual: ResidualRisk,
    outcome: Outcome,
    measures: usize,
) -> Result<(), &'static str> {
    match outcome {
        Outcome::Proceed | Outcome::ProceedWithMeasures if residual == ResidualRisk::High => {
            Err("a HIGH residual risk needs CONSULT_AUTHORITY or DO_NOT_PROCEED (Art. 36(1))")
        }
        Outcome::ProceedWithMeasures if measures == 0 => {
            Err("PROCEED_WITH_MEASURES needs at least one measure")
        }
        _ => Ok(()),
    }
}

/// Whether a review due at `due` is overdue at `now` (due means due: the instant itself).
pub fn review_overdue(due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    due <= now
}

/// Whole days from `due` to `now` (0 when not yet due), for listings.
pub fn days_overdue(due: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - due).num_days().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_review_date_is_after_the_assessment_within_three_years_and_not_yet_passed() {
        let assessed = at("2026-01-10T09:00:00Z");
        let now = at("2026-02-01T00:00:00Z");
        assert_eq!(
            check_review(assessed, at("2027-01-10T09:00:00Z"), now, false),
            Ok(())
        );
        assert_eq!(
            check_review(assessed, assessed, now, false),
            Err(ReviewProblem::NotAfterAssessment)
        );
        // 2028 is a leap year: 1,096 days after is the last date allowed.
        assert_eq!(
            check_review(
                assessed,
                assessed + Duration::days(MAX_REVIEW_DAYS),
                now,
                false
            ),
            Ok(())
        );
        assert_eq!(
            check_review(
                assessed,
                assessed + Duration::days(MAX_REVIEW_DAYS) + Duration::seconds(1),
                now,
                false
            ),
            Err(ReviewProblem::TooFar)
        );
    }

    #[test]
    fn a_review_date_already_passed_needs_a_reason() {
        let assessed = at("2023-01-10T09:00:00Z");
        let due = at("2025-01-10T09:00:00Z");
        let now = at("2026-02-01T00:00:00Z");
        assert_eq!(
            check_review(assessed, due, now, false),
            Err(ReviewProblem::PassedWithoutReason)
        );
        assert_eq!(check_review(assessed, due, now, true), Ok(()));
        // Due at this very instant is due already.
        assert_eq!(
            check_review(now - Duration::days(30), now, now, false),
            Err(ReviewProblem::PassedWithoutReason)
        );
        assert!(!late_reason_misplaced(due, now));
        assert!(late_reason_misplaced(now + Duration::days(1), now));
    }

    #[test]
    fn a_high_residual_risk_is_not_simply_accepted() {
        use Outcome::*;
        use ResidualRisk::*;
        assert!(check_outcome(High, Proceed, 3).is_err());
        assert!(check_outcome(High, ProceedWithMeasures, 3).is_err());
        assert!(check_outcome(High, ConsultAuthority, 0).is_ok());
        assert!(check_outcome(High, DoNotProceed, 0).is_ok());
        assert!(check_outcome(Medium, ProceedWithMeasures, 0).is_err());
        assert!(check_outcome(Medium, ProceedWithMeasures, 1).is_ok());
        assert!(check_outcome(Low, Proceed, 0).is_ok());
    }

    #[test]
    fn overdue_counts_from_the_due_instant() {
        let due = at("2026-03-01T00:00:00Z");
        assert!(!review_overdue(due, due - Duration::seconds(1)));
        assert!(review_overdue(due, due));
        assert_eq!(days_overdue(due, due - Duration::days(3)), 0);
        assert_eq!(days_overdue(due, due + Duration::hours(47)), 1);
    }
}
