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
    /// Password hashes computed at once (argon2id, 19 MiB each); 0: one per core.
    pub hash_workers: usize,
    /// Sign-ins waiting for a hashing worker before more are refused (RESOURCE_EXHAUSTED).
    pub hash_queue: usize,
}

/// Most hashing workers accepted (each holds 19 MiB while busy).
pub const MAX_HASH_WORKERS: usize = 64;
/// Longest hashing queue accepted.
pub const MAX_HASH_QUEUE: usize = 10_000;

impl IdentitySettings {
    /// Refuses values out of range, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.hash_workers > MAX_HASH_WORKERS {
            anyhow::bail!("identity.hash_workers: at most {MAX_HASH_WORKERS} (0 = one per core)");
        }
        if self.hash_queue == 0 || self.hash_queue > MAX_HASH_QUEUE {
            anyhow::bail!("identity.hash_queue: between 1 and {MAX_HASH_QUEUE}");
        }
        Ok(())
    }
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 24 * 60,
            billing_retention_years: 8,
            deletion: "rights".to_owned(),
            hash_workers: 0,
            hash_queue: 128,
        }
    }
}
