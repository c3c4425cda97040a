//! The regime table: per regime, the authority to notify and the hours from awareness to
//! its deadline (`[[incidents.regimes]]`).

use serde::{Deserialize, Serialize};

/// Longest regime key.
const MAX_KEY: usize = 32;
/// Longest display name or authority.
const MAX_NAME: usize = 200;
/// The longest authority deadline the table accepts: a year.
pub const MAX_HOURS: u32 = 8760;

/// A row of the regime table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regime {
    /// Key, e.g. `gdpr` (lowercase letters, digits, `_`).
    pub key: String,
    /// Display name.
    pub name: String,
    /// The authority notified.
    pub authority: String,
    /// Hours from awareness to the authority deadline.
    pub authority_deadline_hours: u32,
}

/// The default table: GDPR Art. 33(1) and UK GDPR Art. 33(1), 72 hours after becoming
/// aware of the breach.
pub fn defaults() -> Vec<Regime> {
    vec![
        Regime {
            key: "gdpr".to_owned(),
            name: "GDPR (EU/EEA)".to_owned(),
            authority: "the competent (lead) supervisory authority".to_owned(),
            authority_deadline_hours: 72,
        },
        Regime {
            key: "uk_gdpr".to_owned(),
            name: "UK GDPR".to_owned(),
            authority: "the Information Commissioner's Office".to_owned(),
            authority_deadline_hours: 72,
        },
    ]
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The problems of a table, each naming its key (`incidents.regimes[1].key: …`).
pub fn check_table(table: &[Regime]) -> Vec<String> {
    let mut problems = Vec::new();
    if table.is_empty() {
        problems.push("at least one regime".to_owned());
    }
    for (i, regime) in table.iter().enumerate() {
        let at = format!("incidents.regimes[{i}]");
        if !is_key(&regime.key) {
            problems.push(format!(
                "{at}.key: lowercase letters, digits and '_', 1-{MAX_KEY} characters"
            ));
        } else if table[..i].iter().any(|r| r.key == regime.key) {
            problems.push(format!("{at}.key: {} appears twice", regime.key));
        }
        for (field, value) in [("name", &regime.name), ("authority", &regime.authority)] {
            let n = value.trim().chars().count();
            if n == 0 || n > MAX_NAME || value.chars().any(char::is_control) {
                problems.push(format!("{at}.{field}: one line of 1-{MAX_NAME} characters"));
            }
        }
        if !(1..=MAX_HOURS).contains(&regime.authority_deadline_hours) {
            problems.push(format!(
                "{at}.authority_deadline_hours: from 1 to {MAX_HOURS}"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_is_gdpr_and_uk_gdpr_at_72_hours() {
        let table = defaults();
        assert!(check_table(&table).is_empty());
        let keys: Vec<(&str, u32)> = table
            .iter()
            .map(|r| (r.key.as_str(), r.authority_deadline_hours))
            .collect();
        assert_eq!(keys, [("gdpr", 72), ("uk_gdpr", 72)]);
    }

    #[test]
    fn a_bad_table_names_every_bad_key() {
        let mut table = defaults();
        table.push(Regime {
            key: "gdpr".into(),
            name: String::new(),
            authority: "x".into(),
            authority_deadline_hours: 0,
        });
        table.push(Regime {
            key: "Bad Key".into(),
            ..defaults()[0].clone()
        });
        assert_eq!(
            check_table(&table),
            [
                "incidents.regimes[2].key: gdpr appears twice",
                "incidents.regimes[2].name: one line of 1-200 characters",
                "incidents.regimes[2].authority_deadline_hours: from 1 to 8760",
                "incidents.regimes[3].key: lowercase letters, digits and '_', 1-32 characters",
            ]
        );
        assert_eq!(check_table(&[]), ["at least one regime"]);
    }
}
