//! The field checks both registers' requests share (incidents in `requests`, assessments
//! in `assessments::requests`, each adding its own on [`Check`]): every problem is
//! recorded as a field violation, and the request refused with all of them together.

use chrono::{DateTime, Utc};
use pdm_runtime::{
    FieldViolations,
    convert::from_timestamp,
    text::{KEY_RULE, TextRule, is_key, refuse_card_number},
};

use crate::error::IncidentsError;

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
    pub fn finish(self) -> Result<(), IncidentsError> {
        self.v.finish().map_err(IncidentsError::Invalid)
    }

    /// A text field by its rule; required or not.
    pub fn text(
        &mut self,
        field: &str,
        rule: TextRule,
        raw: &str,
        required: bool,
    ) -> Option<String> {
        let value = if required {
            rule.required(raw)
        } else {
            rule.optional(raw)
        };
        self.v.check(field, value)
    }

    /// A required instant.
    pub fn time(
        &mut self,
        field: &str,
        raw: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
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

    /// A required instant, not after `now`.
    pub fn past_time(
        &mut self,
        field: &str,
        raw: Option<&prost_types::Timestamp>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self.time(field, raw) {
            Some(t) if t > now => {
                self.add(field, "must not be in the future");
                None
            }
            t => t,
        }
    }

    /// `min` to `max` keys, each without a card number, no duplicates; None when any is
    /// wrong.
    pub fn keys(
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

    /// A required id (a UUID) of a `what` ("incident", "assessment").
    pub fn uuid(&mut self, field: &str, raw: &str, what: &str) -> Option<String> {
        match uuid::Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id.to_string()),
            Err(_) => {
                let problem = if raw.trim().is_empty() {
                    "required".to_owned()
                } else {
                    format!("not an {what} id")
                };
                self.add(field, problem);
                None
            }
        }
    }
}
