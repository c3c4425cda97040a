//! Request validation: every field checked, every problem reported together.

use chrono::{DateTime, Duration, Utc};
use pdm_proto::consent::v1::{Channel, MessageKind, Source};
use pdm_runtime::{FieldViolations, SubjectId, convert::from_timestamp, text::TextRule};
use uuid::Uuid;

use crate::{domain::catalogue::Catalogue, error::ConsentError};

/// Longest actor.
pub const MAX_ACTOR: usize = 128;
/// Longest policy version.
pub const MAX_POLICY_VERSION: usize = 32;
/// Most pairs in a batch check.
pub const MAX_BATCH: usize = 10_000;
/// Largest history page.
pub const MAX_PAGE: i32 = 1000;
/// How far in the future `occurred_at` may be (clock skew).
const SKEW: Duration = Duration::minutes(5);

/// Collects violations for one request.
#[derive(Debug, Default)]
pub struct Check {
    v: FieldViolations,
}

impl Check {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A subject id.
    pub fn subject(&mut self, field: &str, raw: &str) -> Option<Uuid> {
        self.v
            .check(field, raw.parse::<SubjectId>())
            .map(|s| *s.as_uuid())
    }

    /// A purpose in the catalogue.
    pub fn purpose(&mut self, field: &str, raw: &str, catalogue: &Catalogue) -> Option<usize> {
        if raw.is_empty() {
            self.v.add(field, "required");
            return None;
        }
        let found = catalogue.find(raw);
        if found.is_none() {
            self.v.add(field, "unknown purpose (see ListPurposes)");
        }
        found
    }

    /// A source.
    pub fn source(&mut self, raw: i32) -> Option<Source> {
        match Source::try_from(raw) {
            Ok(Source::Unspecified) => {
                self.v.add("source", "required");
                None
            }
            Ok(source) => Some(source),
            Err(_) => {
                self.v.add("source", "unknown source");
                None
            }
        }
    }

    /// A channel.
    pub fn channel(&mut self, raw: i32) -> Option<Channel> {
        match Channel::try_from(raw) {
            Ok(Channel::Unspecified) => {
                self.v.add("channel", "required");
                None
            }
            Ok(channel) => Some(channel),
            Err(_) => {
                self.v.add("channel", "unknown channel");
                None
            }
        }
    }

    /// A message kind.
    pub fn kind(&mut self, raw: i32) -> Option<MessageKind> {
        match MessageKind::try_from(raw) {
            Ok(MessageKind::Unspecified) => {
                self.v.add("kind", "required");
                None
            }
            Ok(kind) => Some(kind),
            Err(_) => {
                self.v.add("kind", "unknown message kind");
                None
            }
        }
    }

    /// One line of 1 to `max` characters, through the mesh's free-text guard (no card
    /// numbers).
    pub fn text(&mut self, field: &str, raw: &str, max: usize) -> Option<String> {
        self.v.check(field, TextRule::line(max).required(raw))
    }

    /// A SHA-256 in hex (64 characters), lower-cased.
    pub fn text_hash(&mut self, raw: &str) -> Option<String> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(raw.to_ascii_lowercase())
        } else {
            self.v.add(
                "text_hash",
                "must be the SHA-256 of the consent text, 64 hex characters",
            );
            None
        }
    }

    /// When something happened: now when absent, never in the future.
    pub fn occurred_at(
        &mut self,
        raw: Option<&prost_types::Timestamp>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Some(ts) = raw else {
            return Some(now);
        };
        match from_timestamp(ts) {
            Some(t) if t <= now + SKEW => Some(t),
            Some(_) => {
                self.v.add("occurred_at", "must not be in the future");
                None
            }
            None => {
                self.v.add("occurred_at", "not a valid time");
                None
            }
        }
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    pub fn finish(self) -> Result<(), ConsentError> {
        self.v.finish().map_err(ConsentError::Invalid)
    }
}

/// Unwraps a value a successful [`Check::finish`] guarantees.
pub fn checked<T>(value: Option<T>) -> Result<T, ConsentError> {
    value.ok_or(ConsentError::Internal("validated field missing"))
}
