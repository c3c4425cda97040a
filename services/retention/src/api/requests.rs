//! Request validation: every field of a RetentionService request checked, every problem
//! reported together as a field violation, and the result a typed value (or a row ready
//! to store) the handlers use as it is.

use chrono::{DateTime, Utc};
use pdm_proto::{common::v1::LegalBasis, retention::v1 as pb, subject::v1::RetentionTrigger};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::from_timestamp,
    text::{TextRule, refuse_card_number},
};

use crate::{
    MAX_TEXT, MAX_WHO,
    domain::{
        period::Period,
        policy::{Policy, describe},
        seed::{CATEGORY_RULE, is_category},
    },
    error::RetentionError,
    store::{CONFIG_AUTHOR, SEED_AUTHOR, entities::legal_hold},
};

/// Largest page of runs.
pub const MAX_PAGE: i32 = 100;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u64 = 20;
/// How far ahead of the clock a trigger time may be (clock skew).
const SKEW_MINUTES: i64 = 5;
/// Descriptions, reasons and references.
const TEXT: TextRule = TextRule::line(MAX_TEXT);
/// Who acts.
const WHO: TextRule = TextRule::line(MAX_WHO);

/// Collects violations.
#[derive(Debug, Default)]
struct Check {
    v: FieldViolations,
}

impl Check {
    /// Records a violation.
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    fn finish(self) -> Result<(), RetentionError> {
        self.v.finish().map_err(RetentionError::Invalid)
    }

    /// The validated value when nothing was wrong: `build` puts together the parts a
    /// clean check guarantees (it answering `None` would be a bug in this file).
    fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, RetentionError> {
        self.finish()?;
        build().ok_or(RetentionError::Internal("validated request incomplete"))
    }

    /// Descriptions, reasons and references: one line of at most 500 characters through
    /// the mesh's free-text guard (no control characters, no card number); required or
    /// not (empty).
    fn text(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
        let checked = if required {
            TEXT.required(raw)
        } else {
            TEXT.optional(raw)
        };
        self.v.check(field, checked)
    }

    /// Who acts: one line of 1-128 characters through the free-text guard; "seed" and
    /// "config" name the service itself.
    fn who(&mut self, field: &str, raw: &str) -> Option<String> {
        let value = self.v.check(field, WHO.required(raw))?;
        if value == SEED_AUTHOR || value == CONFIG_AUTHOR {
            self.add(
                field,
                "\"seed\" and \"config\" are reserved for the service itself",
            );
            return None;
        }
        Some(value)
    }

    /// A category key; empty is `None` when not required. The key format lets digits
    /// through ("4111-1111-1111-1111" is a well-formed key), so a card number is refused
    /// first, and named as one.
    fn category(&mut self, field: &str, raw: &str, required: bool) -> Option<Option<String>> {
        if raw.is_empty() {
            if required {
                self.add(field, "required");
                return None;
            }
            return Some(None);
        }
        self.v.check(field, refuse_card_number(raw))?;
        if !is_category(raw) {
            self.add(field, CATEGORY_RULE);
            return None;
        }
        Some(Some(raw.to_owned()))
    }

    /// A subject id.
    fn subject(&mut self, field: &str, raw: &str) -> Option<SubjectId> {
        self.v.check(field, raw.parse::<SubjectId>())
    }

    /// A subject id, or `None` when empty.
    fn maybe_subject(&mut self, field: &str, raw: &str) -> Option<Option<SubjectId>> {
        if raw.is_empty() {
            return Some(None);
        }
        self.subject(field, raw).map(Some)
    }

    /// A server-assigned id (a UUID).
    fn id(&mut self, field: &str, raw: &str) -> Option<String> {
        if raw.is_empty() {
            self.add(field, "required");
            return None;
        }
        match uuid::Uuid::parse_str(raw) {
            Ok(id) if raw.len() == 36 => Some(id.hyphenated().to_string()),
            _ => {
                self.add(field, "not an id this service gave");
                None
            }
        }
    }
}

// === Validated requests ===

/// A validated UpsertPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// The policy (described in words when the request gave no description).
    pub policy: Policy,
    /// Who changes it (never the service's own names).
    pub changed_by: String,
}

/// A validated ReleaseLegalHold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRelease {
    /// The hold (an id this service gave).
    pub hold_id: String,
    /// Who releases it.
    pub released_by: String,
}

/// A validated ListLegalHolds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldFilter {
    /// Only holds on this subject (and those on a whole category).
    pub subject: Option<SubjectId>,
    /// Released holds too.
    pub include_released: bool,
}

/// A validated RecordTrigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerEvent {
    /// Whose.
    pub subject: SubjectId,
    /// A per-subject trigger.
    pub trigger: RetentionTrigger,
    /// When it happened: not ahead of the clock; now when the request named no time.
    pub occurred_at: DateTime<Utc>,
}

/// A validated RunPurge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeStart {
    /// Count what would go, delete nothing.
    pub dry_run: bool,
    /// Who starts it.
    pub triggered_by: String,
}

/// A validated ListPurgeRuns page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsPage {
    /// Most runs ([`DEFAULT_PAGE`] when the request named no page size).
    pub limit: u64,
    /// Runs older than this run id (the page token).
    pub before: Option<String>,
}

// === impl parse ===

/// Validates UpsertPolicy: the policy and who changes it.
pub fn parse_upsert_policy(r: &pb::UpsertPolicyRequest) -> Result<PolicyChange, RetentionError> {
    let mut c = Check::default();
    let Some(p) = &r.policy else {
        c.add("policy", "required");
        c.finish()?;
        return Err(RetentionError::Internal("unreachable"));
    };
    let category = c.category("policy.category", &p.category, true);
    let trigger = match RetentionTrigger::try_from(p.trigger) {
        Ok(RetentionTrigger::Unspecified) => {
            c.add("policy.trigger", "required");
            None
        }
        Ok(trigger) => Some(trigger),
        Err(_) => {
            c.add("policy.trigger", "unknown trigger");
            None
        }
    };
    let raw = p.period.unwrap_or_default();
    let period = match Period::parse(raw.years, raw.months, raw.days) {
        Ok(period) if trigger == Some(RetentionTrigger::Never) && !period.is_zero() => {
            c.add("policy.period", "data kept without limit has no period");
            None
        }
        Ok(period) => Some(period),
        Err(problem) => {
            c.add("policy.period", problem);
            None
        }
    };
    let legal_basis = match LegalBasis::try_from(p.legal_basis) {
        Ok(LegalBasis::Unspecified) => {
            c.add("policy.legal_basis", "required");
            None
        }
        Ok(basis) => Some(basis),
        Err(_) => {
            c.add("policy.legal_basis", "unknown legal basis");
            None
        }
    };
    let description = c.text("policy.description", &p.description, false);
    let changed_by = c.who("policy.changed_by", &p.changed_by);
    c.finish_with(|| {
        let (period, trigger, description) = (period?, trigger?, description?);
        Some(PolicyChange {
            policy: Policy {
                category: category??,
                period,
                trigger,
                legal_basis: legal_basis?,
                description: if description.is_empty() {
                    describe(period, trigger)
                } else {
                    description
                },
            },
            changed_by: changed_by?,
        })
    })
}

/// Validates ListPolicyVersions: the category.
pub fn parse_list_policy_versions(
    r: &pb::ListPolicyVersionsRequest,
) -> Result<String, RetentionError> {
    let mut c = Check::default();
    let category = c.category("category", &r.category, true);
    c.finish_with(|| category?)
}

/// Validates PlaceLegalHold into a row; `categories` are those with a policy.
pub fn parse_place_legal_hold(
    r: &pb::PlaceLegalHoldRequest,
    categories: &[String],
    now: DateTime<Utc>,
) -> Result<legal_hold::Model, RetentionError> {
    let mut c = Check::default();
    let Some(h) = &r.hold else {
        c.add("hold", "required");
        c.finish()?;
        return Err(RetentionError::Internal("unreachable"));
    };
    let subject = c.maybe_subject("hold.subject_id", &h.subject_id);
    let category = c.category("hold.category", &h.category, false);
    if let Some(Some(key)) = &category
        && !categories.contains(key)
    {
        c.add("hold.category", "no policy has this category");
    }
    if h.subject_id.is_empty() && h.category.is_empty() {
        c.add(
            "hold.subject_id",
            "a hold names a subject, a category, or both",
        );
    }
    let reason = c.text("hold.reason", &h.reason, true);
    let reference = c.text("hold.reference", &h.reference, true);
    let placed_by = c.who("hold.placed_by", &h.placed_by);
    c.finish_with(|| {
        Some(legal_hold::Model {
            hold_id: uuid::Uuid::now_v7().to_string(),
            // The store keeps "" for a hold on a whole category (or on every category).
            subject_id: subject?.map(|s| s.to_string()).unwrap_or_default(),
            category: category?.unwrap_or_default(),
            reason: reason?,
            reference: reference?,
            placed_by: placed_by?,
            placed_at: now,
            released_at: None,
            released_by: None,
        })
    })
}

/// Validates ReleaseLegalHold.
pub fn parse_release_legal_hold(
    r: &pb::ReleaseLegalHoldRequest,
) -> Result<HoldRelease, RetentionError> {
    let mut c = Check::default();
    let hold_id = c.id("hold_id", &r.hold_id);
    let released_by = c.who("released_by", &r.released_by);
    c.finish_with(|| {
        Some(HoldRelease {
            hold_id: hold_id?,
            released_by: released_by?,
        })
    })
}

/// Validates ListLegalHolds.
pub fn parse_list_legal_holds(r: &pb::ListLegalHoldsRequest) -> Result<HoldFilter, RetentionError> {
    let mut c = Check::default();
    let subject = c.maybe_subject("subject_id", &r.subject_id);
    c.finish_with(|| {
        Some(HoldFilter {
            subject: subject?,
            include_released: r.include_released,
        })
    })
}

/// Validates RecordTrigger: the subject, a per-subject trigger, and when (not ahead of
/// `now`; empty is now).
pub fn parse_record_trigger(
    r: &pb::RecordTriggerRequest,
    now: DateTime<Utc>,
) -> Result<TriggerEvent, RetentionError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let trigger = match RetentionTrigger::try_from(r.trigger) {
        Ok(
            t @ (RetentionTrigger::AccountClosed
            | RetentionTrigger::ConsentWithdrawn
            | RetentionTrigger::RequestCompleted),
        ) => Some(t),
        _ => {
            c.add(
                "trigger",
                "ACCOUNT_CLOSED, CONSENT_WITHDRAWN or REQUEST_COMPLETED",
            );
            None
        }
    };
    let at = match r.occurred_at.as_ref().map(from_timestamp) {
        None => Some(now),
        Some(Some(t)) if t <= now + chrono::Duration::minutes(SKEW_MINUTES) => Some(t),
        Some(_) => {
            c.add("occurred_at", "a valid time, not in the future");
            None
        }
    };
    c.finish_with(|| {
        Some(TriggerEvent {
            subject: subject?,
            trigger: trigger?,
            occurred_at: at?,
        })
    })
}

/// Validates RunPurge.
pub fn parse_run_purge(r: &pb::RunPurgeRequest) -> Result<PurgeStart, RetentionError> {
    let mut c = Check::default();
    let by = c.who("triggered_by", &r.triggered_by);
    c.finish_with(|| {
        Some(PurgeStart {
            dry_run: r.dry_run,
            triggered_by: by?,
        })
    })
}

/// A run id field.
fn run_id(raw: &str) -> Result<String, RetentionError> {
    let mut c = Check::default();
    let run_id = c.id("run_id", raw);
    c.finish_with(|| run_id)
}

/// Validates RetryPurge: the run to retry.
pub fn parse_retry_purge(r: &pb::RetryPurgeRequest) -> Result<String, RetentionError> {
    run_id(&r.run_id)
}

/// Validates GetPurgeRun: the run.
pub fn parse_get_purge_run(r: &pb::GetPurgeRunRequest) -> Result<String, RetentionError> {
    run_id(&r.run_id)
}

/// Validates ListPurgeRuns.
pub fn parse_list_purge_runs(r: &pb::ListPurgeRunsRequest) -> Result<RunsPage, RetentionError> {
    let mut c = Check::default();
    if !(0..=MAX_PAGE).contains(&r.page_size) {
        c.add("page_size", "0 to 100");
    }
    let before = if r.page_token.is_empty() {
        Some(None)
    } else {
        match uuid::Uuid::parse_str(&r.page_token) {
            Ok(_) if r.page_token.len() == 36 => Some(Some(r.page_token.clone())),
            _ => {
                c.add("page_token", "not a token from a previous page");
                None
            }
        }
    };
    let limit = match u64::try_from(r.page_size) {
        Ok(0) | Err(_) => DEFAULT_PAGE,
        Ok(n) => n,
    };
    c.finish_with(|| {
        Some(RunsPage {
            limit,
            before: before?,
        })
    })
}

/// Validates GetSchedule: the subject.
pub fn parse_get_schedule(r: &pb::GetScheduleRequest) -> Result<SubjectId, RetentionError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    c.finish_with(|| subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn fields(err: RetentionError) -> Vec<String> {
        use pdm_runtime::tonic_types::StatusExt;
        match err {
            RetentionError::Invalid(status) => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
                .unwrap_or_default(),
            other => vec![format!("not a violation: {other}")],
        }
    }

    fn policy(p: pb::Policy) -> pb::UpsertPolicyRequest {
        pb::UpsertPolicyRequest { policy: Some(p) }
    }

    #[test]
    fn every_bad_policy_field_is_reported() {
        let r = policy(pb::Policy {
            category: "Billing Record".into(),
            trigger: 99,
            period: Some(pb::Period {
                years: -1,
                months: 0,
                days: 0,
            }),
            legal_basis: 0,
            description: "line\nbreak".into(),
            changed_by: "seed".into(),
            ..Default::default()
        });
        assert_eq!(
            fields(parse_upsert_policy(&r).expect_err("all bad")),
            [
                "policy.category",
                "policy.trigger",
                "policy.period",
                "policy.legal_basis",
                "policy.description",
                "policy.changed_by"
            ]
        );
        assert_eq!(
            fields(parse_upsert_policy(&pb::UpsertPolicyRequest::default()).expect_err("none")),
            ["policy"]
        );
    }

    #[test]
    fn a_good_policy_without_a_description_is_described() {
        let r = policy(pb::Policy {
            category: "billing.record".into(),
            trigger: RetentionTrigger::AccountClosed as i32,
            period: Some(pb::Period {
                years: 6,
                months: 0,
                days: 0,
            }),
            legal_basis: LegalBasis::LegalObligation as i32,
            description: String::new(),
            changed_by: "dpo@example.org".into(),
            ..Default::default()
        });
        let period = Period::years(6);
        assert_eq!(
            parse_upsert_policy(&r).expect("valid"),
            PolicyChange {
                policy: Policy {
                    category: "billing.record".into(),
                    period,
                    trigger: RetentionTrigger::AccountClosed,
                    legal_basis: LegalBasis::LegalObligation,
                    description: describe(period, RetentionTrigger::AccountClosed),
                },
                changed_by: "dpo@example.org".into(),
            }
        );
    }

    #[test]
    fn a_hold_reports_every_bad_field_and_a_good_one_is_a_row() {
        let categories = vec!["billing.record".to_owned()];
        let bad = pb::PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: "nope".into(),
                category: "support.ticket".into(),
                reason: String::new(),
                reference: "4111 1111 1111 1111".into(),
                placed_by: "config".into(),
                ..Default::default()
            }),
        };
        assert_eq!(
            fields(parse_place_legal_hold(&bad, &categories, now()).expect_err("all bad")),
            [
                "hold.subject_id",
                "hold.category",
                "hold.reason",
                "hold.reference",
                "hold.placed_by"
            ]
        );
        let subject = SubjectId::new_v7();
        let good = pb::PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: subject.to_string(),
                category: String::new(),
                reason: "litigation".into(),
                reference: "case 12".into(),
                placed_by: "legal".into(),
                ..Default::default()
            }),
        };
        let row = parse_place_legal_hold(&good, &categories, now()).expect("valid");
        assert_eq!(
            (
                row.subject_id,
                row.category,
                row.reason,
                row.reference,
                row.placed_by,
                row.placed_at
            ),
            (
                subject.to_string(),
                String::new(),
                "litigation".to_owned(),
                "case 12".to_owned(),
                "legal".to_owned(),
                now()
            )
        );
    }

    #[test]
    fn a_trigger_reports_every_bad_field_and_defaults_to_now() {
        let bad = pb::RecordTriggerRequest {
            subject_id: String::new(),
            trigger: RetentionTrigger::EventTime as i32,
            occurred_at: Some(pdm_runtime::convert::timestamp(
                now() + chrono::Duration::hours(1),
            )),
        };
        assert_eq!(
            fields(parse_record_trigger(&bad, now()).expect_err("all bad")),
            ["subject_id", "trigger", "occurred_at"]
        );
        let subject = SubjectId::new_v7();
        let good = pb::RecordTriggerRequest {
            subject_id: subject.to_string(),
            trigger: RetentionTrigger::AccountClosed as i32,
            occurred_at: None,
        };
        assert_eq!(
            parse_record_trigger(&good, now()).expect("valid"),
            TriggerEvent {
                subject,
                trigger: RetentionTrigger::AccountClosed,
                occurred_at: now(),
            }
        );
    }

    #[test]
    fn releases_and_pages_report_every_bad_field() {
        let r = pb::ReleaseLegalHoldRequest {
            hold_id: "12".into(),
            released_by: String::new(),
        };
        assert_eq!(
            fields(parse_release_legal_hold(&r).expect_err("all bad")),
            ["hold_id", "released_by"]
        );
        let r = pb::ListPurgeRunsRequest {
            page_size: MAX_PAGE + 1,
            page_token: "next".into(),
        };
        assert_eq!(
            fields(parse_list_purge_runs(&r).expect_err("all bad")),
            ["page_size", "page_token"]
        );
        assert_eq!(
            parse_list_purge_runs(&pb::ListPurgeRunsRequest::default()).expect("valid"),
            RunsPage {
                limit: DEFAULT_PAGE,
                before: None,
            }
        );
    }
}
