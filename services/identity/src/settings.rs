//! The `[identity]` settings section.

use serde::Deserialize;

/// Identity-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentitySettings {
    /// How long a session lasts, in minutes.
    pub session_ttl_minutes: i64,
    /// How long billing records are kept after an account closes, in years (policy: "for
    /// eight years after that").
    pub billing_retention_years: u32,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 24 * 60,
            billing_retention_years: 8,
        }
    }
}
