//! The mesh's one free-text guard. Every string a person or a service types into pdm goes
//! through it before it is stored, echoed or forwarded: trimmed, bounded, free of control
//! characters, and never holding a payment card number (policy: "We don't actually collect
//! or store this sensitive payment information ourselves").
//!
//! Typed fields are refused with a field violation when they hold a card number
//! ([`TextRule`], [`refuse_card_number`]); text we scrub instead of refusing (crash
//! reports) has each card number replaced with [`CARD`] ([`scrub_card_numbers`]).
//!
//! The fields, from the protos (request messages; paths as the violations name them):
//! - identity: `first_name`, `last_name`, `email`, `billing_contact.name`,
//!   `billing_contact.email`, `billing_contact.payment_processor_ref`, the ticket's
//!   `contact`, `summary`, `description`, `attachments[i].file_name` and the content of
//!   text attachments;
//! - consent: the `actor` of every write, `policy_version`;
//! - telemetry: `events[i].feature`, `events[i].screen`, `events[i].link_url`, and of the
//!   device context `locale`, `time_zone`, `os_name`, `os_version`, `browser_name`,
//!   `browser_version`, `app_version`, `referrer_url`, `exit_url` (URLs are checked once
//!   stripped of their query and with their escapes decoded); `ReportCrash.error_type`,
//!   `message` and `stack_trace` are scrubbed instead; `device_id` is kept only as a keyed
//!   hash and is not searched (an IMEI passes the Luhn check);
//! - retention: `policy.category`, `policy.description`, `policy.changed_by`,
//!   `hold.category`, `hold.reason`, `hold.reference`, `hold.placed_by`, `released_by`,
//!   `triggered_by`, `ListPolicyVersions.category`;
//! - transfers: `recipient.key`, `recipient.name`, `recipient.contract_reference`,
//!   `recipient.certifications`, `recipient.purposes`, `recipient.data_categories`,
//!   `mechanism.parties`, `mechanism.annex_references`, `mechanism.purposes`,
//!   `mechanism.data_categories`, `mechanism.tia.reference`,
//!   `mechanism.tia.supplementary_measures`, and `AuthorizeTransfer.purpose`,
//!   `data_categories`, `reference`;
//! - rights: `notes`, `purpose`, `rectifications[i].value`,
//!   `credential.operator_reference`, the `reason` of an extension or a cancellation;
//! - every idempotency key and request reference, through
//!   [`crate::ids::check_request_id`]: SubjectData's `request_id` and `run_id`,
//!   identity's `DeleteAccount.request_id`, telemetry's `batch_id`, rights'
//!   `client_reference`.
//!
//! Structured fields (subject and recipient ids, enums, dates, country codes, hashes, page
//! tokens) are parsed by their own format, which a card number cannot pass; passwords and
//! session tokens are checked, never stored; phone numbers are E.164, where a 13- to
//! 15-digit number cannot be told from a card number and is taken as a phone number.
//! The black-box suite (`tests/e2e/tests/card_numbers.rs`) tries a card in every string
//! field of every request, found from the descriptors, so a new field is covered without
//! anyone listing it.

mod card;

pub use card::{MAX_DIGITS, MIN_DIGITS, card_number_ranges, contains_card_number, luhn_valid};

/// What a card number is replaced with in scrubbed text.
pub const CARD: &str = "<card>";

/// Why a text field was refused; the descriptions are the field violations' text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty (or only white space) where a value is required.
    #[error("required")]
    Required,
    /// More characters than the field's limit.
    #[error("at most {0} characters")]
    TooLong(usize),
    /// A control character (line breaks and tabs only where several lines are allowed).
    #[error("must not contain control characters")]
    Control,
    /// A payment card number.
    #[error("must not contain a payment card number")]
    CardNumber,
}

/// The rule of one free-text field: its length limit and whether it may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    max_chars: usize,
    multiline: bool,
}

impl TextRule {
    /// One line of at most `max_chars` characters (names, reasons, references, actors).
    pub const fn line(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: false,
        }
    }

    /// Text of at most `max_chars` characters where line breaks and tabs are allowed
    /// (descriptions, notes).
    pub const fn lines(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: true,
        }
    }

    /// The field's limit in characters.
    pub const fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// A required value, trimmed.
    pub fn required(&self, raw: &str) -> Result<String, TextError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(TextError::Required);
        }
        self.check(value).map(|()| value.to_owned())
    }

    /// An optional value, trimmed; empty is allowed.
    pub fn optional(&self, raw: &str) -> Result<String, TextError> {
        let value = raw.trim();
        self.check(value).map(|()| value.to_owned())
    }

    /// An optional value, trimmed; `None` when empty.
    pub fn maybe(&self, raw: &str) -> Result<Option<String>, TextError> {
        let value = self.optional(raw)?;
        Ok((!value.is_empty()).then_some(value))
    }

    fn check(&self, value: &str) -> Result<(), TextError> {
        if value.chars().count() > self.max_chars {
            return Err(TextError::TooLong(self.max_chars));
        }
        let allowed = |c: char| self.multiline && matches!(c, '\n' | '\r' | '\t');
        if value.chars().any(|c| c.is_control() && !allowed(c)) {
            return Err(TextError::Control);
        }
        refuse_card_number(value)
    }
}

/// Refuses a value that holds a card number: for structured values whose own format
/// lets digits through (keys, email addresses, file names).
pub fn refuse_card_number(value: &str) -> Result<(), TextError> {
    if contains_card_number(value) {
        return Err(TextError::CardNumber);
    }
    Ok(())
}

/// What a key may hold (a category, purpose, service or regime key such as
/// `account.profile`), as a field violation says it.
pub const KEY_RULE: &str = "lowercase letters, digits, '_', '.', '-'; 1-64 characters";

/// Whether `item` is a key: 1 to 64 lowercase ASCII letters, digits, `_`, `.` or `-`.
pub fn is_key(item: &str) -> bool {
    !item.is_empty()
        && item.len() <= 64
        && item.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// `text` with every card number replaced by [`CARD`], and how many were replaced.
pub fn scrub_card_numbers(text: &str) -> (String, u32) {
    let ranges = card_number_ranges(text);
    if ranges.is_empty() {
        return (text.to_owned(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in &ranges {
        out.push_str(&text[at..range.start]);
        out.push_str(CARD);
        at = range.end;
    }
    out.push_str(&text[at..]);
    (out, u32::try_from(ranges.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_lowercase_names() {
        for key in ["account.profile", "gdpr", "uk_gdpr", "a-1", &"k".repeat(64)] {
            assert!(is_key(key), "{key}");
        }
        for not in ["", "Account", "a b", "é", "a/b", &"k".repeat(65)] {
            assert!(!is_key(not), "{not}");
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_card_free() {
        let name = TextRule::line(100);
        assert_eq!(name.required("  Ada ").as_deref(), Ok("Ada"));
        assert_eq!(name.required("  "), Err(TextError::Required));
        assert_eq!(
            name.required(&"é".repeat(101)),
            Err(TextError::TooLong(100))
        );
        assert!(name.required(&"é".repeat(100)).is_ok());
        assert_eq!(
            name.required("pay with 4111 1111 1111 1111"),
            Err(TextError::CardNumber)
        );
        assert_eq!(
            name.required("Jo 7 4111-1111-1111-1111"),
            Err(TextError::CardNumber)
        );
        assert_eq!(name.required("nul\0byte"), Err(TextError::Control));
        assert_eq!(name.required("two\nlines"), Err(TextError::Control));
        assert_eq!(name.optional("").as_deref(), Ok(""));
        assert_eq!(name.maybe(" "), Ok(None));
        let notes = TextRule::lines(100);
        assert!(notes.required("line one\nline two\ttab").is_ok());
        assert_eq!(notes.required("bell\u{7}"), Err(TextError::Control));
    }

    #[test]
    fn violations_read_as_plain_descriptions() {
        assert_eq!(
            TextError::CardNumber.to_string(),
            "must not contain a payment card number"
        );
        assert_eq!(TextError::TooLong(5).to_string(), "at most 5 characters");
    }

    #[test]
    fn scrubbing_replaces_each_card_and_keeps_the_rest() {
        let (clean, n) =
            scrub_card_numbers("paid 4111 1111 1111 1111 then 5500-0000-0000-0004, qty 2");
        assert_eq!(clean, "paid <card> then <card>, qty 2");
        assert_eq!(n, 2);
        let (clean, n) = scrub_card_numbers("qty 2 4111111111111111!");
        assert!(!clean.contains("4111111111111111"), "{clean}");
        assert_eq!(n, 1);
        assert_eq!(scrub_card_numbers("nothing"), ("nothing".to_owned(), 0));
    }
}
