//! The answers of an access request that do not come from the records alone ("How to access
//! and control your information": "the purposes of the processing", "the recipients to whom
//! the personal data has/will be disclosed", "how long we intend to store your personal
//! data for"):
//! - purposes: every purpose the subject consented to (from consent), besides those the
//!   records name;
//! - recipients: the register's standing recipients, who receive everyone's data of a
//!   category (processors such as hosting, payments and backups; sub-processors; our own
//!   offices as joint controllers), for the categories the subject has, besides the
//!   recipients of logged transfers; a recipient that decides its own purposes (an
//!   advertising partner) receives data person by person, so it appears only when a
//!   transfer of the subject's data was logged;
//! - how long: the retention rule that really applies to each category (the retention
//!   service's schedule), before what a service says of its own records.

use std::collections::{BTreeMap, BTreeSet};

use pdm_proto::{
    consent::v1::{ConsentStatus, PurposeState},
    transfers::v1::{Recipient, RecipientRole},
};
use serde::{Deserialize, Serialize};

/// A purpose the subject consented to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consented {
    /// Purpose key.
    pub purpose: String,
    /// Legal basis in the subject's region (lower case, e.g. "consent").
    pub legal_basis: String,
}

/// A recipient of the register that receives everyone's data of its categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Name.
    pub name: String,
    /// Role, lower case (e.g. "processor").
    pub role: String,
    /// ISO 3166 country.
    pub country: String,
    /// Purposes it receives data for.
    pub purposes: Vec<String>,
    /// Categories it receives.
    pub data_categories: Vec<String>,
}

/// The purposes in force by consent.
pub fn consented(states: &[PurposeState]) -> Vec<Consented> {
    states
        .iter()
        .filter(|s| s.consent == ConsentStatus::Granted as i32)
        .map(|s| Consented {
            purpose: s.purpose.clone(),
            legal_basis: pdm_proto::common::v1::LegalBasis::try_from(s.legal_basis)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("LEGAL_BASIS_")
                .to_lowercase(),
        })
        .collect()
}

/// Whether a recipient of `role` receives everyone's data (not person by person).
pub fn is_standing(role: RecipientRole) -> bool {
    matches!(
        role,
        RecipientRole::Processor | RecipientRole::SubProcessor | RecipientRole::JointController
    )
}

/// The standing recipients of the register.
pub fn standing(register: &[Recipient]) -> Vec<Standing> {
    register
        .iter()
        .filter(|r| is_standing(RecipientRole::try_from(r.role).unwrap_or_default()))
        .map(|r| Standing {
            name: r.name.clone(),
            role: RecipientRole::try_from(r.role)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("RECIPIENT_ROLE_")
                .to_lowercase(),
            country: r.country.clone(),
            purposes: r.purposes.clone(),
            data_categories: r.data_categories.clone(),
        })
        .collect()
}

/// The standing recipients of the subject's data: those receiving a category the subject
/// has (or that name no category: everything).
pub fn standing_for<'a>(all: &'a [Standing], categories: &BTreeSet<String>) -> Vec<&'a Standing> {
    all.iter()
        .filter(|s| {
            s.data_categories.is_empty() || s.data_categories.iter().any(|c| categories.contains(c))
        })
        .collect()
}

/// How long each category is kept: the schedule's rule where it has one, else the
/// service's own description.
pub fn how_long(
    from_services: &BTreeMap<String, String>,
    schedule: &BTreeMap<String, String>,
    categories: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    categories
        .iter()
        .filter_map(|c| {
            schedule
                .get(c)
                .or_else(|| from_services.get(c))
                .map(|rule| (c.clone(), rule.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(name: &str, role: RecipientRole, categories: &[&str]) -> Recipient {
        Recipient {
            name: name.into(),
            role: role as i32,
            country: "IN".into(),
            data_categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_purposes_of_the_processing_include_every_purpose_consented_to() {
        let state = |purpose: &str, consent: ConsentStatus| PurposeState {
            purpose: purpose.into(),
            consent: consent as i32,
            legal_basis: pdm_proto::common::v1::LegalBasis::Consent as i32,
            ..Default::default()
        };
        let got = consented(&[
            state("marketing_email", ConsentStatus::Granted),
            state("marketing_ads", ConsentStatus::Withdrawn),
            state("product_analytics", ConsentStatus::Granted),
            state("service_provision", ConsentStatus::NotRequired),
        ]);
        let keys: Vec<&str> = got.iter().map(|c| c.purpose.as_str()).collect();
        assert_eq!(keys, ["marketing_email", "product_analytics"]);
        assert_eq!(got[0].legal_basis, "consent");
    }

    #[test]
    fn the_recipients_to_whom_the_data_will_be_disclosed_include_the_standing_processors() {
        let register = [
            recipient(
                "Hosting India",
                RecipientRole::Processor,
                &["account.profile"],
            ),
            recipient(
                "Office UK",
                RecipientRole::JointController,
                &["support.ticket"],
            ),
            recipient(
                "Ad partner",
                RecipientRole::IndependentController,
                &["account.profile"],
            ),
            recipient("Payments", RecipientRole::Processor, &["billing.record"]),
        ];
        let all = standing(&register);
        assert_eq!(all.len(), 3, "the advertising partner is not standing");
        let has: BTreeSet<String> = ["account.profile".to_owned()].into();
        let names: Vec<&str> = standing_for(&all, &has)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["Hosting India"]);
        assert_eq!(all[0].role, "processor");
    }

    #[test]
    fn how_long_we_intend_to_store_it_is_the_rule_that_really_applies() {
        let services: BTreeMap<String, String> = [
            (
                "support.ticket".to_owned(),
                "while the account exists".to_owned(),
            ),
            (
                "account.profile".to_owned(),
                "while the account exists".to_owned(),
            ),
        ]
        .into();
        let schedule: BTreeMap<String, String> = [(
            "support.ticket".to_owned(),
            "at most eight years after the ticket was opened".to_owned(),
        )]
        .into();
        let categories: BTreeSet<String> =
            ["support.ticket".to_owned(), "account.profile".to_owned()].into();
        let got = how_long(&services, &schedule, &categories);
        assert_eq!(
            got["support.ticket"],
            "at most eight years after the ticket was opened"
        );
        assert_eq!(got["account.profile"], "while the account exists");
    }
}
