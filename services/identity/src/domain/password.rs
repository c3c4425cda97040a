//! Passwords: the policy, and argon2id hashing (OWASP parameters: 19 MiB, 2 passes).
//! Hashing is CPU-heavy; callers run it on the blocking pool.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing cost an attacker can ask for).
pub const MAX_CHARS: usize = 256;

/// Checks the password policy.
pub fn check_policy(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars == 0 {
        return Err("required");
    }
    if chars < MIN_CHARS {
        return Err("at least 12 characters");
    }
    if chars > MAX_CHARS {
        return Err("at most 256 characters");
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (salt and parameters included).
pub fn hash(password: &str) -> Result<String, String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc`. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => PasswordVerifier::<PasswordHash>::verify_password(
            &hasher(),
            password.as_bytes(),
            &parsed,
        )
        .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters() {
        assert_eq!(check_policy(""), Err("required"));
        assert_eq!(check_policy("short"), Err("at least 12 characters"));
        assert!(check_policy("correct horse").is_ok());
        assert!(check_policy(&"ü".repeat(12)).is_ok());
        assert!(check_policy(&"x".repeat(257)).is_err());
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let h1 = hash("correct horse battery").expect("hash");
        let h2 = hash("correct horse battery").expect("hash");
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2);
        assert!(verify("correct horse battery", &h1));
        assert!(!verify("correct horse battery!", &h1));
        assert!(!verify("anything", "not a phc string"));
    }
}
