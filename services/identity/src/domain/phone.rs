//! Phone numbers in E.164 form.

/// Validates an E.164 number: `+`, a non-zero digit, then 7 to 14 more digits. Spaces,
/// dots, hyphens and parentheses are removed first; the compact form is returned.
pub fn parse_e164(raw: &str) -> Result<String, &'static str> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return Err("must be in E.164 form, e.g. +447700900123");
    };
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(compact)
    } else {
        Err("must be in E.164 form, e.g. +447700900123")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_compacted() {
        assert_eq!(
            parse_e164("+44 7700 900123").as_deref(),
            Ok("+447700900123")
        );
        assert_eq!(
            parse_e164("+1 (415) 555-0100").as_deref(),
            Ok("+14155550100")
        );
    }

    #[test]
    fn non_e164_numbers_are_refused() {
        for bad in [
            "",
            "07700900123",
            "+0123456789",
            "+12345",
            "+1234567890123456",
            "+44 77OO 900123",
        ] {
            assert!(parse_e164(bad).is_err(), "{bad:?}");
        }
    }
}
