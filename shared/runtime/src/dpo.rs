//! The Data Protection Officer's contact (`[incidents.dpo]`): one setting read by every
//! service that names the DPO (the incidents register, the notices and access packages of
//! the rights service), so they can never disagree. The privacy policy: "Data Protection
//! Officer", the contact point for data subjects and supervisory authorities.

use serde::{Deserialize, Serialize};

use crate::settings::{Problems, Settings, SettingsError};

/// Where the contact is configured.
pub const KEY: &str = "incidents.dpo";

/// The Data Protection Officer's contact.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct Dpo {
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Postal address (lines separated by newlines); may be empty.
    pub postal_address: String,
}

impl Default for Dpo {
    fn default() -> Self {
        // The policy: "[DPO Email Address – Marco Tedone/Privacy email – privacy@digitalapicraft.com]".
        Self {
            name: "Marco Tedone".to_owned(),
            email: "privacy@digitalapicraft.com".to_owned(),
            postal_address: String::new(),
        }
    }
}

impl Dpo {
    /// The contact `settings` configure, checked (a bad value is named under `[incidents.dpo]`).
    pub fn from_settings(settings: &Settings) -> Result<Self, SettingsError> {
        let dpo: Self = settings.section(KEY)?;
        let mut problems = Problems::new();
        dpo.check(&mut problems);
        problems.into_result(dpo)
    }

    /// Adds a problem per bad value, named under `[incidents.dpo]`.
    pub fn check(&self, problems: &mut Problems) {
        if self.name.trim().is_empty()
            || self.name.chars().count() > 200
            || self.name.contains('\n')
        {
            problems.add(format!("{KEY}.name"), "one line of 1-200 characters");
        }
        let email = self.email.trim();
        let plausible = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.contains(char::is_whitespace);
        if !plausible {
            problems.add(format!("{KEY}.email"), "an email address (name@domain)");
        }
        if self.postal_address.chars().count() > 1000 {
            problems.add(format!("{KEY}.postal_address"), "at most 1000 characters");
        }
    }

    /// The contact in one line: "Name <email>", then the postal address on one line.
    pub fn one_line(&self) -> String {
        let mut line = format!("{} <{}>", self.name, self.email);
        let postal: Vec<&str> = self
            .postal_address
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !postal.is_empty() {
            line.push_str(", ");
            line.push_str(&postal.join(", "));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_passes_and_is_read_from_incidents_dpo() {
        let mut problems = Problems::new();
        Dpo::default().check(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let settings = Settings::with_overrides([
            ("incidents.dpo.name", "Ada Officer"),
            ("incidents.dpo.email", "dpo@example.org"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let dpo = Dpo::from_settings(&settings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dpo.one_line(), "Ada Officer <dpo@example.org>");
        let bad = Settings::with_overrides([("incidents.dpo.email", "nobody")])
            .unwrap_or_else(|e| panic!("{e}"));
        let err = Dpo::from_settings(&bad).expect_err("a bad email");
        assert_eq!(err.problems[0].0, "incidents.dpo.email");
    }
}
