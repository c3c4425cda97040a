//! Disclosures required by law ("we may disclose your information … if required to do so
//! by law, or in response to valid requests by public authorities"): a disclosure to a
//! public authority is recorded with the order behind it, and a gagging order keeps it out
//! of the subject's access answer until it lapses (UK GDPR Sch. 2 para. 2; GDPR Art. 23).

use chrono::{DateTime, Months, Utc};
use pdm_proto::transfers::v1::RecipientRole;

/// The longest secrecy accepted, in years.
pub const MAX_SECRECY_YEARS: u32 = 10;

/// Whether a disclosure to a recipient in `role` must name its legal order (and only
/// then may it carry one).
pub fn required(role: RecipientRole) -> bool {
    role == RecipientRole::PublicAuthority
}

/// Why a secrecy date is refused, if it is.
pub fn secrecy_refused(until: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let latest = now
        .checked_add_months(Months::new(12 * MAX_SECRECY_YEARS))
        .unwrap_or(now);
    if until <= now {
        Some("in the future (leave it out when the subject may be told)".into())
    } else if until > latest {
        Some(format!("at most {MAX_SECRECY_YEARS} years ahead"))
    } else {
        None
    }
}

/// Whether a logged disclosure is withheld from the subject at `now`.
pub fn withheld(secret_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    secret_until.is_some_and(|until| now < until)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .single()
            .expect("date")
    }

    #[test]
    fn only_authorities_receive_under_a_legal_order() {
        assert!(required(RecipientRole::PublicAuthority));
        for role in [
            RecipientRole::Processor,
            RecipientRole::SubProcessor,
            RecipientRole::IndependentController,
            RecipientRole::JointController,
        ] {
            assert!(!required(role), "{role:?}");
        }
    }

    #[test]
    fn a_gagging_order_withholds_the_disclosure_until_it_lapses() {
        let until = now() + Duration::days(180);
        assert!(withheld(Some(until), now()));
        assert!(withheld(Some(until), until - Duration::seconds(1)));
        assert!(!withheld(Some(until), until), "told from the day it lapses");
        assert!(!withheld(None, now()));
    }

    #[test]
    fn secrecy_is_in_the_future_and_bounded() {
        assert!(secrecy_refused(now(), now()).is_some());
        assert!(secrecy_refused(now() - Duration::days(1), now()).is_some());
        assert!(secrecy_refused(now() + Duration::days(1), now()).is_none());
        assert!(secrecy_refused(now() + Duration::days(365 * 10), now()).is_none());
        assert!(secrecy_refused(now() + Duration::days(365 * 10 + 5), now()).is_some());
    }
}
