//! Identifiers parsed once at the edge.

use std::{fmt, str::FromStr};

use uuid::Uuid;

/// A data subject's id: a UUID (identity issues UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectId(Uuid);

impl SubjectId {
    /// A fresh, time-ordered id.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl FromStr for SubjectId {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("required");
        }
        // Hyphenated form only: one spelling per subject keeps keys and indexes unique.
        if s.len() != 36 {
            return Err("must be a UUID in hyphenated form");
        }
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| "must be a UUID in hyphenated form")
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl From<Uuid> for SubjectId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

/// Checks a request id (idempotency key): 1 to 128 printable ASCII characters, without a
/// payment card number (ids are stored with receipts and shown in access packages).
pub fn check_request_id(value: &str) -> Result<&str, &'static str> {
    if value.is_empty() {
        return Err("required");
    }
    if value.len() > 128 {
        return Err("at most 128 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("printable ASCII only");
    }
    if crate::text::contains_card_number(value) {
        return Err("must not contain a payment card number");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_round_trip_in_lower_case() {
        let id = SubjectId::new_v7();
        assert_eq!(id.to_string().parse::<SubjectId>(), Ok(id));
        let upper = id.to_string().to_uppercase();
        assert_eq!(
            upper.parse::<SubjectId>().map(|s| s.to_string()),
            Ok(id.to_string())
        );
    }

    #[test]
    fn bad_subject_ids_are_refused() {
        assert_eq!("".parse::<SubjectId>(), Err("required"));
        assert!("not-a-uuid".parse::<SubjectId>().is_err());
        assert!(
            "0190f0f0f0f07000800000000000000a"
                .parse::<SubjectId>()
                .is_err()
        );
    }

    #[test]
    fn request_ids() {
        assert!(check_request_id("dsr-42").is_ok());
        assert!(check_request_id("").is_err());
        assert!(check_request_id("has space").is_err());
        assert!(check_request_id(&"x".repeat(129)).is_err());
    }
}
