//! Operator passwords: the length rule and argon2id hashes (the crate's defaults, which
//! are OWASP's: 19 MiB, 2 passes, 1 lane), in PHC strings.

use argon2::{
    Argon2, PasswordHasher as _, PasswordVerifier as _, password_hash::phc::PasswordHash,
};

/// Shortest password accepted (the people's rule at identity).
pub const MIN_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing an attacker can ask for).
pub const MAX_CHARS: usize = 256;

/// Checks the length rule.
pub fn check(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err("at least 12 characters");
    }
    if chars > MAX_CHARS {
        return Err("at most 256 characters");
    }
    Ok(())
}

/// An argon2id PHC string of `password`, freshly salted. Slow (tens of milliseconds, 19 MiB):
/// call it off the async threads.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc` (a malformed hash never matches). Slow, as [`hash`].
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").unwrap_or_default();
        let b = hash("correct horse battery").unwrap_or_default();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_eq!(check("short"), Err("at least 12 characters"));
        assert!(check("twelve chars").is_ok());
        assert!(check(&"x".repeat(257)).is_err());
    }
}
