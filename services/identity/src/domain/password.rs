//! Passwords: the policy, and argon2id hashing (OWASP parameters: 19 MiB, 2 passes).
//!
//! Hashing takes its 19 MiB working memory from the caller, so a bounded set of workers
//! can reuse one block each instead of allocating per call (see `crate::hash_pool`).

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing cost an attacker can ask for).
pub const MAX_CHARS: usize = 256;
/// Memory cost in KiB (OWASP: 19 MiB).
const M_COST: u32 = 19 * 1024;
/// Passes over the memory.
const T_COST: u32 = 2;
/// Salt length in bytes.
const SALT_LEN: usize = 16;
/// Hash length in bytes.
const OUTPUT_LEN: usize = 32;

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

fn params() -> Params {
    Params::new(M_COST, T_COST, 1, Some(OUTPUT_LEN)).unwrap_or_default()
}

/// A working memory big enough for the hashes this service makes.
pub fn memory() -> Vec<Block> {
    vec![Block::new(); params().block_count()]
}

/// Hashes a password into a PHC string (salt and parameters included), working in `memory`.
pub fn hash_in(memory: &mut [Block], password: &str) -> Result<String, String> {
    let params = params();
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let mut out = [0u8; OUTPUT_LEN];
    let blocks = memory
        .get_mut(..params.block_count())
        .ok_or("working memory too small")?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc`, working in `memory`. A malformed hash, or one whose
/// parameters need more memory than given (never made here), never matches.
pub fn verify_in(memory: &mut [Block], password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let Some(blocks) = memory.get_mut(..params.block_count()) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

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
        let mut memory = memory();
        let h1 = hash_in(&mut memory, "correct horse battery").expect("hash");
        let h2 = hash_in(&mut memory, "correct horse battery").expect("hash");
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(h1, h2);
        assert!(verify_in(&mut memory, "correct horse battery", &h1));
        assert!(!verify_in(&mut memory, "correct horse battery!", &h1));
        assert!(!verify_in(&mut memory, "anything", "not a phc string"));
    }

    #[test]
    fn hashes_are_standard_argon2id_both_ways() {
        // Hashes stored before the worker pool (made by the crate's own hasher) still verify,
        // and ours verify with the crate's verifier.
        let mut memory = memory();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let theirs = argon
            .hash_password(b"correct horse battery")
            .expect("hash")
            .to_string();
        assert!(verify_in(&mut memory, "correct horse battery", &theirs));
        let ours = hash_in(&mut memory, "correct horse battery").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            argon
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn a_hash_needing_more_memory_than_given_never_matches() {
        let big = Params::new(M_COST * 2, 1, 1, None).expect("params");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, big);
        let phc = argon.hash_password(b"correct horse battery").expect("hash");
        let mut memory = memory();
        assert!(!verify_in(
            &mut memory,
            "correct horse battery",
            &phc.to_string()
        ));
    }
}
