//! Adequacy lists per exporting regime, each with a dated source. Defaults reflect the
//! decisions in force around the policy's date; deployments replace them by configuration
//! (`[[transfers.adequacy]]`) when decisions change.

use pdm_proto::transfers::v1::Regime;
use serde::Deserialize;

use super::country::{self, EEA};

/// A destination on an adequacy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Country code.
    pub country: String,
    /// A certification the recipient must hold (partial adequacy, e.g. the EU-US DPF).
    pub requires_certification: Option<String>,
}

/// One regime's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdequacyList {
    /// Exporting regime.
    pub regime: Regime,
    /// Source of the list.
    pub source: String,
    /// Date of the source.
    pub as_of: String,
    /// Destinations.
    pub destinations: Vec<Destination>,
}

/// An adequacy list as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct AdequacyConfig {
    /// "EU", "UK" or "CH".
    pub regime: String,
    /// Source.
    pub source: String,
    /// Date (YYYY-MM-DD).
    pub as_of: String,
    /// Fully adequate countries.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Partially adequate destinations: `{ country, certification }`.
    #[serde(default)]
    pub certified: Vec<CertifiedConfig>,
}

/// A partially adequate destination.
#[derive(Debug, Clone, Deserialize)]
pub struct CertifiedConfig {
    /// Country.
    pub country: String,
    /// Certification the recipient must hold.
    pub certification: String,
}

fn full(countries: &[&str]) -> Vec<Destination> {
    countries
        .iter()
        .map(|c| Destination {
            country: (*c).to_owned(),
            requires_certification: None,
        })
        .collect()
}

fn certified(country: &str, certification: &str) -> Destination {
    Destination {
        country: country.to_owned(),
        requires_certification: Some(certification.to_owned()),
    }
}

/// Countries with an adequacy decision of the European Commission (Canada: commercial
/// organisations under PIPEDA).
const EU_ADEQUATE: [&str; 14] = [
    "AD", "AR", "CA", "CH", "FO", "GB", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "UY",
];

/// The default lists.
pub fn defaults() -> Vec<AdequacyList> {
    let mut uk = full(&EEA);
    uk.extend(full(&[
        "GI", "AD", "AR", "CA", "CH", "FO", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "UY",
    ]));
    uk.push(certified("US", "UK Extension to the EU-US DPF"));
    let mut ch = full(&EEA);
    ch.extend(full(&[
        "GB", "GI", "AD", "AR", "CA", "FO", "GG", "IL", "IM", "JE", "NZ", "UY",
    ]));
    ch.push(certified("US", "Swiss-US DPF"));
    let mut eu = full(&EU_ADEQUATE);
    eu.push(certified("US", "EU-US DPF"));
    vec![
        AdequacyList {
            regime: Regime::Eu,
            source: "European Commission adequacy decisions under Art. 45 GDPR (incl. Decision 2023/1795, EU-US Data Privacy Framework)".into(),
            as_of: "2024-06-28".into(),
            destinations: eu,
        },
        AdequacyList {
            regime: Regime::Uk,
            source: "UK adequacy regulations under UK GDPR Art. 45 and DPA 2018 s.17A (incl. the UK Extension to the EU-US DPF)".into(),
            as_of: "2024-06-28".into(),
            destinations: uk,
        },
        AdequacyList {
            regime: Regime::Ch,
            source: "Annex 1 of the Swiss Data Protection Ordinance (incl. the Swiss-US DPF from 2024-09-15)".into(),
            as_of: "2024-09-15".into(),
            destinations: ch,
        },
    ]
}

/// The lists in force: the defaults, with configured regimes replacing theirs.
pub fn lists(configured: &[AdequacyConfig]) -> Result<Vec<AdequacyList>, String> {
    let mut lists = defaults();
    for (i, c) in configured.iter().enumerate() {
        let at = format!("transfers.adequacy[{i}]");
        let regime = match c.regime.as_str() {
            "EU" => Regime::Eu,
            "UK" => Regime::Uk,
            "CH" => Regime::Ch,
            other => return Err(format!("{at}.regime: {other:?} is not EU, UK or CH")),
        };
        if chrono::NaiveDate::parse_from_str(&c.as_of, "%Y-%m-%d").is_err() {
            return Err(format!("{at}.as_of: must be YYYY-MM-DD"));
        }
        let mut destinations = Vec::new();
        for raw in &c.countries {
            let code = country::parse(raw).map_err(|e| format!("{at}.countries: {raw:?}: {e}"))?;
            destinations.push(Destination {
                country: code,
                requires_certification: None,
            });
        }
        for d in &c.certified {
            let code = country::parse(&d.country)
                .map_err(|e| format!("{at}.certified: {:?}: {e}", d.country))?;
            destinations.push(certified(&code, &d.certification));
        }
        let list = AdequacyList {
            regime,
            source: c.source.clone(),
            as_of: c.as_of.clone(),
            destinations,
        };
        lists.retain(|l| l.regime != regime);
        lists.push(list);
    }
    lists.sort_by_key(|l| l.regime as i32);
    Ok(lists)
}

/// The list entry that makes `country` adequate for a recipient with `certifications`.
pub fn adequate<'a>(
    lists: &'a [AdequacyList],
    regime: Regime,
    country: &str,
    certifications: &[String],
) -> Option<(&'a AdequacyList, &'a Destination)> {
    let list = lists.iter().find(|l| l.regime == regime)?;
    let destination = list.destinations.iter().find(|d| {
        d.country == country
            && d.requires_certification
                .as_ref()
                .is_none_or(|needed| certifications.iter().any(|c| c == needed))
    })?;
    Some((list, destination))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn india_is_not_adequate_and_japan_is_for_the_eu() {
        let l = defaults();
        assert!(adequate(&l, Regime::Eu, "IN", &[]).is_none());
        assert!(adequate(&l, Regime::Uk, "IN", &[]).is_none());
        assert!(adequate(&l, Regime::Eu, "JP", &[]).is_some());
    }

    #[test]
    fn the_united_states_is_adequate_only_for_certified_recipients() {
        let l = defaults();
        assert!(adequate(&l, Regime::Eu, "US", &[]).is_none());
        assert!(adequate(&l, Regime::Eu, "US", &["EU-US DPF".to_owned()]).is_some());
        assert!(adequate(&l, Regime::Uk, "US", &["EU-US DPF".to_owned()]).is_none());
    }

    #[test]
    fn configuration_replaces_a_regime_list() {
        let configured = [AdequacyConfig {
            regime: "EU".into(),
            source: "test".into(),
            as_of: "2026-01-01".into(),
            countries: vec!["in".into()],
            certified: vec![],
        }];
        let l = lists(&configured).unwrap_or_default();
        assert!(adequate(&l, Regime::Eu, "IN", &[]).is_some());
        assert!(adequate(&l, Regime::Eu, "JP", &[]).is_none());
        assert!(
            adequate(&l, Regime::Uk, "JP", &[]).is_some(),
            "other regimes keep their defaults"
        );
        let bad = [AdequacyConfig {
            countries: vec!["XX".into()],
            ..configured[0].clone()
        }];
        assert!(lists(&bad).is_err());
    }
}
