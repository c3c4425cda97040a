//! A breach notice to a subject (GDPR/UK GDPR Art. 34(2)): in clear and plain language, the
//! nature of the breach, the likely consequences, the measures taken or proposed, and the
//! name and contact details of the Data Protection Officer. No I/O.

use pdm_runtime::dpo::Dpo;

/// The outbox topic of a breach notice.
pub const TOPIC: &str = "breach_notice";
/// The subject line of its email.
pub const SUBJECT: &str = "Important: a personal data breach that affects you";
/// Longest text of each part (characters).
pub const MAX_TEXT: usize = 4000;

/// What a notice says (the texts from the incidents register; the DPO from configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// What happened.
    pub what_happened: &'a str,
    /// Likely consequences.
    pub likely_consequences: &'a str,
    /// Measures taken or proposed.
    pub measures_taken: &'a str,
    /// Whom to contact.
    pub dpo: &'a Dpo,
}

/// Where a notice went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its message is queued in the outbox.
    Queued,
    /// No address known: nothing sent.
    NoAddress,
    /// The subject was erased: nothing sent.
    Erased,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::NoAddress => "no_address",
            Self::Erased => "erased",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "queued" => Some(Self::Queued),
            "no_address" => Some(Self::NoAddress),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// The body of the email: each part under a plain heading, the DPO last.
pub fn body(parts: &Parts<'_>) -> String {
    let dpo = parts.dpo;
    let mut contact = format!("{}\nEmail: {}", dpo.name, dpo.email);
    if !dpo.postal_address.trim().is_empty() {
        contact.push_str("\nPost: ");
        contact.push_str(&dpo.postal_address.trim().replace('\n', ", "));
    }
    format!(
        "We are writing to tell you about a personal data breach that affects your data.\n\n\
         What happened\n{}\n\n\
         What this may mean for you\n{}\n\n\
         What we have done and are doing about it\n{}\n\n\
         Who to contact\nOur Data Protection Officer answers your questions about this breach:\n{}\n\n\
         You also have the right to lodge a complaint with a data protection supervisory authority.\n",
        parts.what_happened.trim(),
        parts.likely_consequences.trim(),
        parts.measures_taken.trim(),
        contact,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_says_what_happened_the_consequences_the_measures_and_the_dpo_art_34_2() {
        let dpo = Dpo {
            name: "Ada Officer".into(),
            email: "dpo@example.org".into(),
            postal_address: "1 Main St\nLondon".into(),
        };
        let text = body(&Parts {
            what_happened: "A file was sent to the wrong partner.",
            likely_consequences: "Phishing emails.",
            measures_taken: "The partner deleted it.",
            dpo: &dpo,
        });
        for part in [
            "A file was sent to the wrong partner.",
            "Phishing emails.",
            "The partner deleted it.",
            "Ada Officer",
            "dpo@example.org",
            "1 Main St, London",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }

    #[test]
    fn outcomes_round_trip() {
        for o in [Outcome::Queued, Outcome::NoAddress, Outcome::Erased] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("other"), None);
    }
}
