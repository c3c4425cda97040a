//! The data categories the identity service holds, and what an access request must say
//! about each ("How to access and control your information": purposes, categories,
//! recipients, how long, source).

use pdm_proto::common::v1::LegalBasis;

/// What the service says about one category in an export.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    /// Category key.
    pub key: &'static str,
    /// Purposes (purpose catalogue keys).
    pub purposes: &'static [&'static str],
    /// Legal basis.
    pub legal_basis: LegalBasis,
    /// Source.
    pub source: &'static str,
    /// Retention rule, in words.
    pub retention: &'static str,
}

const FROM_SUBJECT: &str = "provided by the subject";
const WHILE_ACCOUNT: &str = "while the account exists; erased when it is deleted";

/// Names, email, phone, region, birth date, and the organisation inferred from the email
/// domain (kept in this record: it is derived from the email and goes with it).
pub const PROFILE: Category = Category {
    key: "account.profile",
    purposes: &[
        "service_provision",
        "account_security",
        "administrative_messages",
        "organisation_insights",
    ],
    legal_basis: LegalBasis::Contract,
    source: FROM_SUBJECT,
    retention: WHILE_ACCOUNT,
};

/// The password (only its argon2id hash is stored).
pub const CREDENTIALS: Category = Category {
    key: "account.credentials",
    purposes: &["account_security"],
    legal_basis: LegalBasis::Contract,
    source: FROM_SUBJECT,
    retention: WHILE_ACCOUNT,
};

/// The profile photo.
pub const PHOTO: Category = Category {
    key: "account.photo",
    purposes: &["service_provision"],
    legal_basis: LegalBasis::Contract,
    source: FROM_SUBJECT,
    retention: WHILE_ACCOUNT,
};

/// Sign-in sessions.
pub const SESSION: Category = Category {
    key: "account.session",
    purposes: &["account_security"],
    legal_basis: LegalBasis::Contract,
    source: "generated when the subject signs in",
    retention: "until the session expires",
};

/// Billing contact and payment processor reference.
pub const BILLING: Category = Category {
    key: "billing.record",
    purposes: &["service_provision"],
    legal_basis: LegalBasis::Contract,
    source: FROM_SUBJECT,
    // The period after closure is the retention policy's (UpsertPolicy may change it).
    retention: "while the account exists, then for the period of the retention policy \
                billing.record after it closes (legal obligation)",
};

/// Support tickets and their attachments.
pub const TICKET: Category = Category {
    key: "support.ticket",
    purposes: &["support"],
    legal_basis: LegalBasis::Contract,
    source: FROM_SUBJECT,
    retention: WHILE_ACCOUNT,
};

/// Categories PurgeExpired acts on.
pub const PURGEABLE: [&str; 3] = [SESSION.key, TICKET.key, BILLING.key];
