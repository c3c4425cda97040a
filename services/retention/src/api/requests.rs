//! Request validation: every field checked, every problem reported together, and values
//! ready for the rules and the store.

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
pub struct Check {
    v: FieldViolations,
}

impl Check {
    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    pub fn finish(self) -> Result<(), RetentionError> {
        self.v.finish().map_err(RetentionError::Invalid)
    }

    /// Descriptions, reasons and references: one line of at most 500 characters through
    /// the mesh's free-text guard (no control characters, no card number); required or
    /// not (empty).
    pub fn text(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
        let checked = if required {
            TEXT.required(raw)
        } else {
            TEXT.optional(raw)
        };
        self.v.check(field, checked)
    }

    /// Who acts: one line of 1-128 characters through the free-text guard; "seed" and
    /// "config" name the service itself.
    pub fn who(&mut self, field: &str, raw: &str) -> Option<String> {
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
    pub fn category(&mut self, field: &str, raw: &str, required: bool) -> Option<Option<String>> {
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

    /// A subject id; empty is `None` when not required.
    pub fn subject(&mut self, field: &str, raw: &str, required: bool) -> Option<Option<String>> {
        if raw.is_empty() && !required {
            return Some(None);
        }
        self.v
            .check(field, raw.parse::<SubjectId>())
            .map(|s| Some(s.to_string()))
    }

    /// A server-assigned id (a UUID).
    pub fn id(&mut self, field: &str, raw: &str) -> Option<String> {
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

/// Unwraps a value a successful [`Check::finish`] guarantees.
pub fn checked<T>(value: Option<T>) -> Result<T, RetentionError> {
    value.ok_or(RetentionError::Internal("validated field missing"))
}

/// Validates UpsertPolicy: the policy and who changes it.
pub fn policy(r: &pb::UpsertPolicyRequest) -> Result<(Policy, String), RetentionError> {
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
    c.finish()?;
    let (period, trigger) = (checked(period)?, checked(trigger)?);
    let description = checked(description)?;
    Ok((
        Policy {
            category: checked(checked(category)?)?,
            period,
            trigger,
            legal_basis: checked(legal_basis)?,
            description: if description.is_empty() {
                describe(period, trigger)
            } else {
                description
            },
        },
        checked(changed_by)?,
    ))
}

/// Validates PlaceLegalHold into a row; `categories` are those with a policy.
pub fn hold(
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
    let subject = c.subject("hold.subject_id", &h.subject_id, false);
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
    c.finish()?;
    Ok(legal_hold::Model {
        hold_id: uuid::Uuid::now_v7().to_string(),
        subject_id: checked(subject)?.unwrap_or_default(),
        category: checked(category)?.unwrap_or_default(),
        reason: checked(reason)?,
        reference: checked(reference)?,
        placed_by: checked(placed_by)?,
        placed_at: now,
        released_at: None,
        released_by: None,
    })
}

/// Validates RecordTrigger: the subject, a per-subject trigger, and when (not ahead of
/// the clock; empty is now).
pub fn trigger(
    r: &pb::RecordTriggerRequest,
    now: DateTime<Utc>,
) -> Result<(String, RetentionTrigger, DateTime<Utc>), RetentionError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id, true);
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
    c.finish()?;
    Ok((checked(checked(subject)?)?, checked(trigger)?, checked(at)?))
}

/// Validates ListPurgeRuns: `(limit, older than)`.
pub fn page(r: &pb::ListPurgeRunsRequest) -> Result<(u64, Option<String>), RetentionError> {
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
    c.finish()?;
    let limit = match u64::try_from(r.page_size) {
        Ok(0) | Err(_) => DEFAULT_PAGE,
        Ok(n) => n,
    };
    Ok((limit, checked(before)?))
}
