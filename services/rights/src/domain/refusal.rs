//! Refusals: a refused request is never closed silently. The subject is told the reasons
//! and where to complain ("GDPR Data Protection Rights": "The right to lodge a complaint
//! with the Information Commissioner's Office – You have the right to lodge a complaint
//! with your local supervisory authority"; Art. 12(4) GDPR: "the reasons for not taking
//! action and ... the possibility of lodging a complaint with a supervisory authority").

use pdm_proto::rights::v1::Regime;

/// Most reasons one refusal gives.
pub const MAX_REASONS: usize = 10;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Reasons are stored one per line (each is validated as one line).
const SEPARATOR: char = '\n';

/// The supervisory authority a subject of `regime` complains to.
pub fn authority(regime: Regime) -> &'static str {
    match regime {
        Regime::UkGdpr => "the Information Commissioner's Office (ICO, ico.org.uk, 0303 123 1113)",
        Regime::Swiss => {
            "the Federal Data Protection and Information Commissioner (FDPIC, edoeb.admin.ch)"
        }
        Regime::Ccpa => {
            "the California Privacy Protection Agency (cppa.ca.gov) or the California Attorney General (oag.ca.gov/privacy)"
        }
        // EU GDPR (and anything unknown): the authority of where the subject lives.
        Regime::Gdpr | Regime::Unspecified => {
            "your local supervisory authority: the data protection authority of the country where you live or work, or where you think the infringement happened (list at edpb.europa.eu), or the Information Commissioner's Office (ICO, ico.org.uk) in the United Kingdom"
        }
    }
}

/// The sentence telling the subject of their right to complain.
pub fn right_to_complain(regime: Regime) -> String {
    format!(
        "You have the right to lodge a complaint with {}.",
        authority(regime)
    )
}

/// The reasons as stored (one per line).
pub fn join(reasons: &[String]) -> String {
    reasons.join(&SEPARATOR.to_string())
}

/// The reasons of a stored refusal (a refusal stored before reasons were listed is one
/// reason).
pub fn split(stored: &str) -> Vec<String> {
    stored
        .split(SEPARATOR)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The message owed to the subject: the refusal, every reason, and where to complain.
pub fn message(request_id: &str, regime: Regime, reasons: &[String]) -> String {
    let listed: String = reasons.iter().map(|r| format!("- {r}\n")).collect();
    format!(
        "We have refused your request {request_id}.\nThe reasons:\n{listed}{}\n\
         You can also write to our Data Protection Officer at privacy@digitalapicraft.com.\n",
        right_to_complain(regime)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_to_lodge_a_complaint_with_the_ico_is_told_to_uk_subjects() {
        let text = right_to_complain(Regime::UkGdpr);
        assert!(text.contains("Information Commissioner's Office"), "{text}");
        assert!(text.starts_with("You have the right to lodge a complaint"));
    }

    #[test]
    fn every_regime_names_a_supervisory_authority() {
        assert!(authority(Regime::Gdpr).contains("local supervisory authority"));
        assert!(authority(Regime::Swiss).contains("FDPIC"));
        assert!(authority(Regime::Ccpa).contains("California Privacy Protection Agency"));
    }

    #[test]
    fn a_refusal_message_gives_every_reason_and_the_right_to_complain() {
        let reasons = vec![
            "we could not verify your identity".to_owned(),
            "the data is needed for a legal claim".to_owned(),
        ];
        let text = message("r-1", Regime::UkGdpr, &reasons);
        assert!(text.contains("r-1"));
        for r in &reasons {
            assert!(text.contains(&format!("- {r}")), "{text}");
        }
        assert!(text.contains("Information Commissioner's Office"), "{text}");
    }

    #[test]
    fn reasons_round_trip_and_an_old_single_reason_stays_one() {
        let reasons = vec!["a".to_owned(), "b c".to_owned()];
        assert_eq!(split(&join(&reasons)), reasons);
        assert_eq!(
            split("identity (restrict): NotFound: no such subject"),
            vec!["identity (restrict): NotFound: no such subject".to_owned()]
        );
        assert!(split("").is_empty());
    }
}
