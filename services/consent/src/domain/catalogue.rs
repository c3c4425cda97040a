//! The purpose catalogue, seeded from the policy and extendable by configuration. Each
//! purpose names its legal basis per region ("Legal Basis for Processing (For UK/EEA/Swiss
//! Users)": every purpose has a named basis there; marketing and testimonials need consent).

use std::collections::HashMap;

use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::LedgerEntryKind,
};
use serde::Deserialize;

/// Most purposes a catalogue may hold (state is kept in 64-bit sets).
pub const MAX_PURPOSES: usize = 64;

/// Regions where UK GDPR, the GDPR or the Swiss FADP apply.
pub const EUROPEAN: [Region; 3] = [Region::Eea, Region::Uk, Region::Ch];

/// Every region, in enum order.
pub const REGIONS: [Region; 7] = [
    Region::Eea,
    Region::Uk,
    Region::Ch,
    Region::UsCa,
    Region::Us,
    Region::In,
    Region::Other,
];

/// One purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// Stable key.
    pub key: String,
    /// What it is for.
    pub description: String,
    /// Data categories processed.
    pub data_categories: Vec<String>,
    /// Basis in European regions.
    pub european_basis: LegalBasis,
    /// Basis elsewhere.
    pub other_basis: LegalBasis,
    /// Direct marketing: objection is absolute.
    pub direct_marketing: bool,
    /// Sale or sharing with ad partners: denied by "do not sell or share".
    pub sale_or_share: bool,
    /// Allowed even while processing is restricted (legal claims and obligations).
    pub survives_restriction: bool,
    /// Processes a special category of personal data (Art. 9(1) GDPR: health, biometric,
    /// genetic, ethnic origin, political opinions, religious beliefs, trade union
    /// membership, sex life): only explicit consent counts (Art. 9(2)(a)).
    pub special_category: bool,
}

impl Purpose {
    /// The legal basis for a subject in `region`.
    pub fn basis(&self, region: Region) -> LegalBasis {
        if EUROPEAN.contains(&region) {
            self.european_basis
        } else {
            self.other_basis
        }
    }

    /// Whether the subject can refuse it: it rests on consent somewhere.
    pub fn refusable(&self) -> bool {
        self.european_basis == LegalBasis::Consent || self.other_basis == LegalBasis::Consent
    }

    /// Whether an objection applies (Art. 21: legitimate interests, public task, direct
    /// marketing).
    pub fn objectable_in(&self, region: Region) -> bool {
        self.direct_marketing
            || matches!(
                self.basis(region),
                LegalBasis::LegitimateInterests | LegalBasis::PublicTask
            )
    }

    /// Whether an objection applies in some region.
    pub fn objectable(&self) -> bool {
        REGIONS.iter().any(|r| self.objectable_in(*r))
    }

    /// Whether a ledger entry of `kind` gives consent to this purpose. Policy, "Consent to
    /// be obtained": "We always ask for your permission before collecting or using any
    /// sensitive personal details": for a special category only an explicit grant counts.
    /// None other can be written for one (GrantConsent refuses it), but the ledger is
    /// read as it is, so the rule holds for any entry in it.
    pub fn consented_by(&self, kind: LedgerEntryKind) -> bool {
        match kind {
            LedgerEntryKind::ExplicitGrant => true,
            LedgerEntryKind::Grant => !self.special_category,
            _ => false,
        }
    }
}

/// The special categories of personal data (Art. 9(1) GDPR), as `(purpose key, what the
/// data is)`: one purpose each, so each is asked for, granted and withdrawn on its own.
pub const SPECIAL_CATEGORIES: [(&str, &str); 8] = [
    ("special_category_health", "health"),
    (
        "special_category_biometric",
        "biometric data identifying a person",
    ),
    ("special_category_genetic", "genetic data"),
    ("special_category_ethnicity", "racial or ethnic origin"),
    ("special_category_politics", "political opinions"),
    (
        "special_category_religion",
        "religious or philosophical beliefs",
    ),
    ("special_category_trade_union", "trade union membership"),
    (
        "special_category_sex_life",
        "sex life or sexual orientation",
    ),
];

/// A purpose as written in configuration (`[[consent.purposes]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct PurposeConfig {
    /// Key: lowercase letters, digits and underscores.
    pub key: String,
    /// Description.
    pub description: String,
    /// Data categories.
    #[serde(default)]
    pub data_categories: Vec<String>,
    /// Basis in the EEA, UK and Switzerland (e.g. "consent", "legitimate_interests").
    pub european_basis: String,
    /// Basis elsewhere.
    pub other_basis: String,
    /// Direct marketing.
    #[serde(default)]
    pub direct_marketing: bool,
    /// Sale or sharing.
    #[serde(default)]
    pub sale_or_share: bool,
    /// A special category of personal data: needs explicit consent.
    #[serde(default)]
    pub special_category: bool,
}

/// The catalogue: purposes by index and by key.
#[derive(Debug, Clone)]
pub struct Catalogue {
    purposes: Vec<Purpose>,
    index: HashMap<String, usize>,
}

fn purpose(
    key: &str,
    description: &str,
    data_categories: &[&str],
    european_basis: LegalBasis,
    other_basis: LegalBasis,
) -> Purpose {
    Purpose {
        key: key.to_owned(),
        description: description.to_owned(),
        data_categories: data_categories.iter().map(|c| (*c).to_owned()).collect(),
        european_basis,
        other_basis,
        direct_marketing: false,
        sale_or_share: false,
        survives_restriction: false,
        special_category: false,
    }
}

/// The purposes the policy names.
pub fn seed() -> Vec<Purpose> {
    use LegalBasis::{Consent, Contract, LegalObligation, LegitimateInterests};
    // "We always ask for your permission before collecting or using any sensitive
    // personal details": explicit consent everywhere, whatever the region's law asks.
    let special = SPECIAL_CATEGORIES.iter().map(|(key, data)| Purpose {
        special_category: true,
        ..purpose(
            key,
            &format!("explicit consent to collect and use data about {data} the subject gives us (support tickets and their attachments)"),
            &["support.ticket"],
            Consent,
            Consent,
        )
    });
    let marketing = |key: &str, description: &str, categories: &[&str]| Purpose {
        direct_marketing: true,
        ..purpose(key, description, categories, Consent, Consent)
    };
    vec![
        // "To Provide and Personalize Our Services"
        purpose(
            "service_provision",
            "operate the services: transactions, sign-in, keeping them running",
            &["account.profile", "account.credentials", "billing.record"],
            Contract,
            Contract,
        ),
        // "For Safety and Security"
        purpose(
            "account_security",
            "verify accounts and activity; prevent, detect and respond to security incidents and fraud",
            &["account.profile", "account.session", "telemetry.device"],
            LegitimateInterests,
            LegitimateInterests,
        ),
        // "For Customer Support"
        purpose(
            "support",
            "resolve technical issues: answer requests, analyse crash reports",
            &["support.ticket", "account.profile", "telemetry.crash"],
            Contract,
            Contract,
        ),
        // "Information about any crashes or errors": filed and exported by telemetry on
        // legitimate interests, so the subject may object (issue 15)
        purpose(
            "crash_reports",
            "analyse crash and error reports from the subject's devices to fix problems",
            &["telemetry.crash"],
            LegitimateInterests,
            LegitimateInterests,
        ),
        // "Cookies and Other Tracking Tools": tracking strictly necessary for a service
        // asked for needs no consent (issue 15)
        purpose(
            "strictly_necessary_tracking",
            "cookies and device identifiers strictly necessary for a service the visitor asked for",
            &["telemetry.event", "telemetry.device"],
            LegitimateInterests,
            LegitimateInterests,
        ),
        // "Information we collect automatically" and "For Research and Improving Our Services"
        purpose(
            "product_analytics",
            "usage and device telemetry: features used, links clicked, interactions, device facts",
            &["telemetry.event", "telemetry.device"],
            Consent,
            LegitimateInterests,
        ),
        purpose(
            "product_research",
            "research and improvement: trends, surveys, feature tests with small groups",
            &["telemetry.event", "survey.response"],
            LegitimateInterests,
            LegitimateInterests,
        ),
        // "personalized features ... relevant updates, notifications, and suggestions"
        purpose(
            "personalization",
            "personalised features, updates and suggestions; content by email domain",
            &["account.profile", "telemetry.event"],
            Contract,
            Contract,
        ),
        // "We may use your email domain to understand which organization or industry
        // you're associated with": legitimate interests everywhere, so the subject may
        // object; identity asks before it answers an account's organisation (issue 15)
        purpose(
            "organisation_insights",
            "infer the organisation or industry the subject is associated with from the email domain",
            &["account.organisation"],
            LegitimateInterests,
            LegitimateInterests,
        ),
        // "Marketing Our Services and Increasing Engagement"
        marketing(
            "marketing_email",
            "promotional email: news, surveys, newsletters, event invitations",
            &["account.profile"],
        ),
        Purpose {
            sale_or_share: true,
            ..marketing(
                "marketing_ads",
                "ads on other companies' websites, apps and platforms such as LinkedIn and Google",
                &["account.profile", "telemetry.event"],
            )
        },
        marketing(
            "marketing_sms",
            "promotional text messages",
            &["account.profile"],
        ),
        marketing(
            "marketing_push",
            "promotional push notifications",
            &["account.profile"],
        ),
        // "With Your Consent": testimonials and featured stories
        purpose(
            "testimonials",
            "publish testimonials or featured stories about the subject as a customer",
            &["account.profile", "account.photo"],
            Consent,
            Consent,
        ),
        // "CCPA Privacy Rights (Do Not Sell My Personal Information)"
        Purpose {
            sale_or_share: true,
            ..purpose(
                "sale_or_share",
                "sale or sharing of personal information with advertising partners",
                &["account.profile", "telemetry.event"],
                Consent,
                LegitimateInterests,
            )
        },
        // "Communicating with You About Our Services": cannot be opted out of
        purpose(
            "administrative_messages",
            "purchase confirmations, subscription reminders, technical notices, security alerts",
            &["account.profile"],
            Contract,
            Contract,
        ),
        // "Sharing Data with International Third Parties": Art. 49(1)(a) explicit consent
        // to a transfer without adequacy or safeguards (asked by the transfers service)
        purpose(
            "international_transfer",
            "explicit consent to an occasional transfer to a country without adequate protection",
            &["account.profile"],
            Consent,
            Consent,
        ),
        // "To Protect Our Legal Rights and Interests"
        Purpose {
            survives_restriction: true,
            ..purpose(
                "legal_compliance",
                "legal claims, regulatory and official inquiries, audits",
                &["account.profile", "billing.record", "consent.record"],
                LegalObligation,
                LegalObligation,
            )
        },
    ]
    .into_iter()
    .chain(special)
    .collect()
}

fn parse_basis(raw: &str) -> Result<LegalBasis, String> {
    match raw {
        "consent" => Ok(LegalBasis::Consent),
        "contract" => Ok(LegalBasis::Contract),
        "legal_obligation" => Ok(LegalBasis::LegalObligation),
        "vital_interests" => Ok(LegalBasis::VitalInterests),
        "public_task" => Ok(LegalBasis::PublicTask),
        "legitimate_interests" => Ok(LegalBasis::LegitimateInterests),
        other => Err(format!("unknown legal basis {other:?}")),
    }
}

/// Whether a purpose key is well formed.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Catalogue {
    /// The seed catalogue plus configured purposes.
    pub fn new(extra: &[PurposeConfig]) -> Result<Self, String> {
        let mut purposes = seed();
        for (i, p) in extra.iter().enumerate() {
            let at = format!("consent.purposes[{i}]");
            if !valid_key(&p.key) {
                return Err(format!(
                    "{at}.key: lowercase letters, digits and underscores, 1-64"
                ));
            }
            if purposes.iter().any(|q| q.key == p.key) {
                return Err(format!("{at}.key: {:?} is already in the catalogue", p.key));
            }
            purposes.push(Purpose {
                key: p.key.clone(),
                description: p.description.clone(),
                data_categories: p.data_categories.clone(),
                european_basis: parse_basis(&p.european_basis)
                    .map_err(|e| format!("{at}.european_basis: {e}"))?,
                other_basis: parse_basis(&p.other_basis)
                    .map_err(|e| format!("{at}.other_basis: {e}"))?,
                direct_marketing: p.direct_marketing,
                sale_or_share: p.sale_or_share,
                survives_restriction: false,
                special_category: p.special_category,
            });
        }
        if purposes.len() > MAX_PURPOSES {
            return Err(format!(
                "consent.purposes: at most {MAX_PURPOSES} purposes in all"
            ));
        }
        let index = purposes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), i))
            .collect();
        Ok(Self { purposes, index })
    }

    /// The index of a purpose.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// A purpose by index.
    pub fn get(&self, index: usize) -> &Purpose {
        &self.purposes[index]
    }

    /// Every purpose.
    pub fn all(&self) -> &[Purpose] {
        &self.purposes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalogue {
        Catalogue::new(&[]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_seed_names_every_purpose_the_policy_needs() {
        let c = cat();
        for key in [
            "service_provision",
            "account_security",
            "support",
            "product_analytics",
            "product_research",
            "personalization",
            "organisation_insights",
            "marketing_email",
            "marketing_ads",
            "testimonials",
            "sale_or_share",
            "administrative_messages",
        ] {
            assert!(c.find(key).is_some(), "{key}");
        }
    }

    #[test]
    fn every_purpose_names_a_basis_in_europe_and_marketing_needs_consent() {
        // "Legal Basis for Processing (For UK/EEA/Swiss Users)"
        let c = cat();
        for p in c.all() {
            for r in EUROPEAN {
                assert_ne!(p.basis(r), LegalBasis::Unspecified, "{}", p.key);
            }
        }
        for key in ["marketing_email", "marketing_ads", "testimonials"] {
            let p = c.get(c.find(key).unwrap_or_default());
            for r in REGIONS {
                assert_eq!(p.basis(r), LegalBasis::Consent, "{key} in {r:?}");
            }
        }
    }

    #[test]
    fn objection_applies_to_legitimate_interests_and_marketing_only() {
        let c = cat();
        let get = |k: &str| c.get(c.find(k).unwrap_or_default());
        assert!(get("product_research").objectable_in(Region::Eea));
        // "We may use your email domain to understand which organization or industry
        // you're associated with": the subject may object to it in every region.
        for r in REGIONS {
            assert!(get("organisation_insights").objectable_in(r), "{r:?}");
        }
        assert!(get("marketing_email").objectable_in(Region::Us));
        assert!(!get("service_provision").objectable());
        assert!(!get("product_analytics").objectable_in(Region::Eea));
        assert!(get("product_analytics").objectable_in(Region::Us));
    }

    #[test]
    fn we_always_ask_for_your_permission_before_using_sensitive_details_each_category_on_its_own() {
        // Policy, "Consent to be obtained": every special category of Art. 9(1) GDPR is
        // a purpose of its own resting on consent in every region, and only an explicit
        // grant gives it.
        let c = cat();
        let special: Vec<&Purpose> = c.all().iter().filter(|p| p.special_category).collect();
        assert_eq!(special.len(), SPECIAL_CATEGORIES.len());
        for p in special {
            for r in REGIONS {
                assert_eq!(p.basis(r), LegalBasis::Consent, "{} in {r:?}", p.key);
            }
            assert!(p.consented_by(LedgerEntryKind::ExplicitGrant), "{}", p.key);
            assert!(!p.consented_by(LedgerEntryKind::Grant), "{}", p.key);
        }
        // Other purposes take either kind of grant.
        let analytics = c.get(c.find("product_analytics").unwrap_or_default());
        assert!(analytics.consented_by(LedgerEntryKind::Grant));
        assert!(analytics.consented_by(LedgerEntryKind::ExplicitGrant));
        assert!(!analytics.consented_by(LedgerEntryKind::Withdraw));
    }

    #[test]
    fn configured_purposes_are_checked() {
        let ok = PurposeConfig {
            key: "beta_programme".into(),
            description: "early access".into(),
            data_categories: vec!["account.profile".into()],
            european_basis: "consent".into(),
            other_basis: "consent".into(),
            direct_marketing: false,
            sale_or_share: false,
            special_category: false,
        };
        let c = Catalogue::new(std::slice::from_ref(&ok)).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.find("beta_programme").is_some());
        let dup = PurposeConfig {
            key: "marketing_email".into(),
            ..ok.clone()
        };
        assert!(Catalogue::new(&[dup]).is_err());
        let bad = PurposeConfig {
            european_basis: "vibes".into(),
            ..ok
        };
        assert!(
            Catalogue::new(&[bad])
                .expect_err("vibes is not a legal basis")
                .contains("european_basis")
        );
    }
}
