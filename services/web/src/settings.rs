//! The `[web]` settings section.

use pdm_runtime::settings::{Problems, SettingsSection};
use serde::Deserialize;

/// The web front's settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebSettings {
    /// HTTP port (`server.host` is the address); 0 takes any free port.
    pub port: u16,
    /// A database URL of its own for the sessions table; empty uses `[database]` (schema
    /// `web`) or `<data_dir>/web.db`.
    pub database_url: String,
    /// A session unused this long ends (minutes).
    pub session_idle_minutes: u32,
    /// A session ends this long after sign-in whatever its use (hours).
    pub session_absolute_hours: u32,
    /// Whether cookies carry `Secure` (true behind TLS; browsers treat
    /// http://localhost as secure, so it stays true for development too).
    pub secure_cookies: bool,
    /// Sign-in attempts allowed per client address in `sign_in_window_secs`.
    pub sign_in_attempts: u32,
    /// The sign-in rate limit's window (seconds).
    pub sign_in_window_secs: u32,
    /// The privacy policy version a consent given on these pages records.
    pub policy_version: String,
    /// How often expired sessions and expired packages are deleted (seconds), and at start.
    pub housekeeping_secs: u32,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            port: 8080,
            database_url: String::new(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            secure_cookies: true,
            sign_in_attempts: 10,
            sign_in_window_secs: 300,
            policy_version: "2024-06-28".to_owned(),
            housekeeping_secs: 600,
        }
    }
}

impl SettingsSection for WebSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        if !(1..=1440).contains(&self.session_idle_minutes) {
            problems.add("web.session_idle_minutes", "between 1 and 1440");
        }
        if !(1..=720).contains(&self.session_absolute_hours) {
            problems.add("web.session_absolute_hours", "between 1 and 720");
        } else if u64::from(self.session_idle_minutes) > u64::from(self.session_absolute_hours) * 60
        {
            problems.add(
                "web.session_idle_minutes",
                "not longer than web.session_absolute_hours",
            );
        }
        if self.sign_in_attempts == 0 {
            problems.add("web.sign_in_attempts", "at least 1");
        }
        if !(1..=86_400).contains(&self.sign_in_window_secs) {
            problems.add("web.sign_in_window_secs", "between 1 and 86400");
        }
        if !(1..=86_400).contains(&self.housekeeping_secs) {
            problems.add("web.housekeeping_secs", "between 1 and 86400");
        }
        let version = self.policy_version.trim();
        if version.is_empty() || version.len() > 32 || version.contains(['\n', '\r']) {
            problems.add("web.policy_version", "1 to 32 characters on one line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_bad_values_are_named() {
        let mut problems = Problems::new();
        WebSettings::default().check(&mut problems);
        assert!(problems.is_empty());
        let bad = WebSettings {
            session_idle_minutes: 0,
            sign_in_attempts: 0,
            policy_version: String::new(),
            housekeeping_secs: 0,
            ..WebSettings::default()
        };
        let mut problems = Problems::new();
        bad.check(&mut problems);
        let text = format!("{:?}", problems);
        for key in [
            "web.session_idle_minutes",
            "web.sign_in_attempts",
            "web.policy_version",
            "web.housekeeping_secs",
        ] {
            assert!(text.contains(key), "{key}: {text}");
        }
    }
}
