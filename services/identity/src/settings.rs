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
    /// How DeleteAccount erases: "rights" sends an erasure request to the rights service,
    /// which reaches every service (and erases here with the same request id); "local"
    /// erases only this service's data (identity running without the rest of the mesh).
    pub deletion: String,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 24 * 60,
            billing_retention_years: 8,
            deletion: "rights".to_owned(),
        }
    }
}
