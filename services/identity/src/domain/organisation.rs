//! Policy, "How we collect and use your personal information": "We may use your email
//! domain to understand which organization or industry you're associated with." The
//! organisation is the registrable domain of a work address; free-mail addresses name no
//! organisation.
//!
//! Limitation: the public suffixes known here are the single labels (`com`, `de`, …) and
//! the few common two-level ones in [`TWO_LEVEL_SUFFIXES`], not the whole Public Suffix
//! List; under another two-level suffix (`gov.uk`, `co.nz`) the organisation key is the
//! suffix plus one label too many or too few (`mail.acme.co.nz` → `co.nz`). Free-mail
//! providers are the few in [`FREE_MAIL`]; others count as organisations. The industry is
//! not inferred: that needs a directory of companies pdm does not have.

use super::email::Email;

/// Longest organisation key: a domain name (RFC 1035, 253 characters).
pub const MAX_LEN: usize = 253;

/// Free-mail domains: an address there says nothing about an employer.
pub const FREE_MAIL: [&str; 10] = [
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "proton.me",
    "protonmail.com",
];

/// Two-level public suffixes under which a registrable domain has three labels.
pub const TWO_LEVEL_SUFFIXES: [&str; 7] = [
    "co.uk", "org.uk", "ac.uk", "com.au", "co.in", "co.jp", "com.br",
];

/// The organisation key of an address: the registrable domain of its email domain
/// (`ada@mail.acme.co.uk` → `acme.co.uk`), or `None` for a free-mail address.
pub fn organisation_key(email: &Email) -> Option<String> {
    let (_, domain) = email.as_str().rsplit_once('@')?;
    let registrable = registrable_domain(domain);
    if FREE_MAIL.contains(&registrable) {
        return None;
    }
    Some(registrable.to_owned())
}

/// The registrable domain: the public suffix and one label before it. `domain` is already
/// lower-cased and has at least two labels (an [`Email`] guarantees both).
fn registrable_domain(domain: &str) -> &str {
    let labels: Vec<&str> = domain.split('.').collect();
    let last_two = labels.len().saturating_sub(2);
    let suffix_labels = if labels.len() >= 2
        && TWO_LEVEL_SUFFIXES.contains(&labels[last_two..].join(".").as_str())
    {
        2
    } else {
        1
    };
    let keep = (suffix_labels + 1).min(labels.len());
    let skipped: usize = labels[..labels.len() - keep]
        .iter()
        .map(|l| l.len() + 1)
        .sum();
    &domain[skipped..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> Option<String> {
        organisation_key(&Email::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}")))
    }

    #[test]
    fn we_may_use_your_email_domain_to_understand_your_organization() {
        // Policy: "We may use your email domain to understand which organization or
        // industry you're associated with."
        assert_eq!(key("ada@acme.com").as_deref(), Some("acme.com"));
        assert_eq!(key("ada@eu.mail.acme.com").as_deref(), Some("acme.com"));
        assert_eq!(key("ada@mail.acme.co.uk").as_deref(), Some("acme.co.uk"));
        assert_eq!(key("ada@acme.co.uk").as_deref(), Some("acme.co.uk"));
        assert_eq!(key("ada@cs.ox.ac.uk").as_deref(), Some("ox.ac.uk"));
        assert_eq!(key("ada@shop.acme.com.br").as_deref(), Some("acme.com.br"));
        assert_eq!(key("ada@Sales.ACME.co.jp").as_deref(), Some("acme.co.jp"));
    }

    #[test]
    fn a_free_mail_address_names_no_organisation() {
        for free in FREE_MAIL {
            assert_eq!(key(&format!("ada@{free}")), None, "{free}");
        }
        // A sub-domain of a free-mail provider is the provider still.
        assert_eq!(key("ada@eu.proton.me"), None);
    }

    #[test]
    fn a_domain_that_is_only_a_suffix_is_kept_whole() {
        // `co.uk` alone is not a registrable domain; nothing better can be said of it.
        assert_eq!(key("ada@co.uk").as_deref(), Some("co.uk"));
        assert_eq!(key("ada@example.org").as_deref(), Some("example.org"));
    }

    #[test]
    fn unknown_two_level_suffixes_are_the_documented_limitation() {
        assert_eq!(key("ada@mail.acme.co.nz").as_deref(), Some("co.nz"));
    }

    proptest::proptest! {
        #[test]
        fn the_key_is_a_suffix_of_the_domain_and_within_the_limit(
            labels in proptest::collection::vec("[a-z]{2}[a-z0-9]{0,8}", 2..6)
        ) {
            let domain = labels.join(".");
            if let Some(k) = key(&format!("ada@{domain}")) {
                proptest::prop_assert!(domain.ends_with(&k));
                proptest::prop_assert!(k.len() <= MAX_LEN);
                proptest::prop_assert!(k.split('.').count() <= 3);
            }
        }
    }
}
