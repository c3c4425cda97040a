//! The policies seeded from the privacy policy ("How long we keep your information"), and
//! the category keys every service uses in `PurgeExpired`.

use pdm_proto::{common::v1::LegalBasis, subject::v1::RetentionTrigger};

use super::{period::Period, policy::Policy};

/// What a category key may hold.
pub const CATEGORY_RULE: &str = "lowercase letters, digits, '_', '.', '-'; 1-64 characters";

/// Whether `key` is a category key.
pub fn is_category(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

const WHILE_ACCOUNT: &str = "while the account exists; erased when it is deleted";
const EIGHT_YEARS: Period = Period::years(8);

fn policy(
    category: &str,
    period: Period,
    trigger: RetentionTrigger,
    legal_basis: LegalBasis,
    description: &str,
) -> Policy {
    Policy {
        category: category.to_owned(),
        period,
        trigger,
        legal_basis,
        description: description.to_owned(),
    }
}

/// The policy's retention rules, version 1 of every category. `telemetry_months` is the
/// configurable period of usage events (default 13).
pub fn policies(telemetry_months: u32) -> Vec<Policy> {
    use LegalBasis::{Consent, Contract, LegalObligation, LegitimateInterests};
    use RetentionTrigger::{AccountClosed, EventTime, Never, RequestCompleted};
    vec![
        // "for as long as you have an account with us in order to meet our contractual
        // obligations to you".
        policy(
            "account.profile",
            Period::default(),
            AccountClosed,
            Contract,
            WHILE_ACCOUNT,
        ),
        policy(
            "account.credentials",
            Period::default(),
            AccountClosed,
            Contract,
            WHILE_ACCOUNT,
        ),
        policy(
            "account.photo",
            Period::default(),
            AccountClosed,
            Contract,
            WHILE_ACCOUNT,
        ),
        policy(
            "account.session",
            Period::days(30),
            EventTime,
            Contract,
            "30 days after sign-in, then the session record is deleted",
        ),
        policy(
            "support.ticket",
            EIGHT_YEARS,
            EventTime,
            Contract,
            "while the account exists, and at most eight years after the ticket was opened",
        ),
        // "and for eight years after that ... (such as tax, accounting or other legal
        // requirements)".
        policy(
            "billing.record",
            EIGHT_YEARS,
            AccountClosed,
            LegalObligation,
            "while the account exists and for eight years after it is closed (tax and accounting law)",
        ),
        // "we will keep such data until you notify us otherwise and/or withdraw your
        // consent": no rule is seeded for it, because pdm holds no marketing data of its
        // own to delete. Marketing uses the account's contact details (kept while the
        // account exists) and is decided from the consent ledger (kept as proof, see
        // consent.proof); a withdrawal or an opt-out stops every marketing use at the very
        // next decision. A service that starts keeping marketing data (e.g. a campaign
        // audience) adds a `marketing.*` rule with trigger CONSENT_WITHDRAWN then.
        policy(
            "telemetry.event",
            Period::months(telemetry_months),
            EventTime,
            Consent,
            &format!(
                "{} from when the event happened",
                Period::months(telemetry_months)
            ),
        ),
        policy(
            "telemetry.crash",
            Period::months(12),
            EventTime,
            LegitimateInterests,
            "12 months from when the crash happened",
        ),
        // "We may also retain aggregate information beyond this time for research
        // purposes ... You cannot be identified from aggregate information": beyond the
        // eight years of personal data, but not without limit (issue 16). Ten years from
        // the bucket's day; telemetry deletes buckets of earlier days.
        policy(
            "telemetry.aggregate",
            Period::years(10),
            EventTime,
            LegitimateInterests,
            "ten years from the day counted: aggregates do not identify anyone, and are \
             kept beyond the eight years of personal data for research, not without limit",
        ),
        // The access trail (who read or changed whose data): accountability and security
        // of processing (Art. 5(2) and 32 GDPR), and the policy's "eight years ... to
        // identify any issues, resolve any legal proceedings", counted from each access.
        // Every service deletes the expired prefix of its trail (see
        // `pdm_access_trail::retention`).
        policy(
            "audit.access",
            EIGHT_YEARS,
            EventTime,
            LegalObligation,
            "each access to personal data is recorded and kept for eight years from the access",
        ),
        // Legal records: proof of consent and the record of transfers (accountability,
        // Art. 5(2), 7(1) and 30 GDPR).
        policy(
            "consent.proof",
            EIGHT_YEARS,
            AccountClosed,
            LegalObligation,
            "proof of consent is kept for eight years after the account is closed",
        ),
        policy(
            "transfers.log",
            EIGHT_YEARS,
            EventTime,
            LegalObligation,
            "the record of each transfer is kept for eight years",
        ),
        // The rights service's own records: a request keeps its personal details (contact,
        // rectified values, notes, messages, package) for two years after it was answered,
        // then only kind, dates and outcome under a pseudonym. Two years: the California
        // regulations require records of consumer requests and how they were answered for
        // at least 24 months (Cal. Code Regs. tit. 11, § 7101(a)), and GDPR accountability
        // (Art. 5(2)) needs the proof; storage limitation (Art. 5(1)(e)) stops there.
        policy(
            "rights.request",
            Period::years(2),
            RequestCompleted,
            LegalObligation,
            "the details of a privacy request are kept two years after it was answered; then \
             only its kind, dates and outcome, under a pseudonym",
        ),
        // "we may retain all personal data you submit for longer period of time for backups".
        policy(
            "backup",
            Period::default(),
            Never,
            LegitimateInterests,
            "covered by key deletion: erasing a subject destroys their encryption key in \
             the key store, which backups of the data do not hold, so those copies become \
             unreadable (crypto-shredding); key store backups are deleted after \
             crypto.key_backup_days (35 by default), the longest a restore can bring the \
             data back",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_covers_the_categories_the_services_purge() {
        let seed = policies(13);
        let find = |key: &str| {
            seed.iter()
                .find(|p| p.category == key)
                .unwrap_or_else(|| panic!("{key} is not seeded"))
        };
        for key in [
            "account.session",
            "support.ticket",
            "billing.record",
            "consent.proof",
            "transfers.log",
            "telemetry.event",
            "telemetry.crash",
            "telemetry.aggregate",
            "audit.access",
            "rights.request",
        ] {
            assert_ne!(find(key).trigger, RetentionTrigger::Never, "{key}");
        }
        let billing = find("billing.record");
        assert_eq!(
            (billing.period, billing.trigger, billing.legal_basis),
            (
                Period::years(8),
                RetentionTrigger::AccountClosed,
                LegalBasis::LegalObligation
            )
        );
        assert_eq!(find("telemetry.event").period, Period::months(13));
        // Issue 16: access trails and aggregates have a limit too.
        assert_eq!(find("audit.access").period, Period::years(8));
        assert_eq!(find("audit.access").trigger, RetentionTrigger::EventTime);
        assert_eq!(find("telemetry.aggregate").period, Period::years(10));
        let six = policies(6);
        let events = six.iter().find(|p| p.category == "telemetry.event");
        assert_eq!(events.map(|p| p.period), Some(Period::months(6)));
        assert_eq!(find("backup").trigger, RetentionTrigger::Never);
        assert!(seed.iter().all(|p| is_category(&p.category)));
        let mut keys: Vec<&str> = seed.iter().map(|p| p.category.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), seed.len(), "one policy per category");
    }

    #[test]
    fn category_keys() {
        assert!(is_category("billing.record"));
        assert!(is_category("a-b_c.9"));
        assert!(!is_category(""));
        assert!(!is_category("Billing"));
        assert!(!is_category("has space"));
        assert!(!is_category(&"x".repeat(65)));
    }
}
