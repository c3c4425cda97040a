//! Free-text fields: length limits and the card-number rule.

use super::card::contains_card_number;

/// Checks a required text field of `min..=max` characters with no card number; returns
/// it trimmed.
pub fn required(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("required".into());
    }
    bounded(value, max)
}

/// Checks an optional text field (empty allowed).
pub fn optional(raw: &str, max: usize) -> Result<String, String> {
    bounded(raw.trim(), max)
}

fn bounded(value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    if contains_card_number(value) {
        return Err("must not contain a payment card number".into());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_card_free() {
        assert_eq!(required("  Ada ", 100).as_deref(), Ok("Ada"));
        assert!(required("  ", 100).is_err());
        assert!(required(&"é".repeat(101), 100).is_err());
        assert!(required(&"é".repeat(100), 100).is_ok());
        assert!(required("pay with 4111 1111 1111 1111", 100).is_err());
        assert!(required("nul\0byte", 100).is_err());
        assert_eq!(optional("", 10).as_deref(), Ok(""));
        assert!(optional("line one\nline two", 100).is_ok());
    }
}
