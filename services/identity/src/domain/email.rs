//! Email addresses, validated and normalised once at the edge.

use std::fmt;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_LEN: usize = 254;

/// A syntactically valid email address, trimmed and lower-cased, so one mailbox has one
/// spelling (and one blind index).
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err("required");
        }
        if value.len() > MAX_LEN {
            return Err("at most 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err("not an email address");
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        if local_ok && domain_ok {
            Ok(Self(value))
        } else {
            Err("not an email address")
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Never print an address by accident (logs, panics).
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let e = Email::parse("  Ada.Lovelace+pdm@Example.ORG ").expect("valid");
        assert_eq!(e.as_str(), "ada.lovelace+pdm@example.org");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "ada@@example.org",
            "ada@exa mple.org",
            ".ada@example.org",
            "ada..x@example.org",
            "ada@-x.org",
            "ada@example.1",
            "a b@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn debug_output_hides_the_address() {
        let e = Email::parse("ada@example.org").expect("valid");
        assert!(!format!("{e:?}").contains("ada"));
    }
}
