//! Random tokens and plain digests.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::CryptoError;

/// `bytes` random bytes, base64url without padding (for session tokens).
pub fn random_token(bytes: usize) -> Result<String, CryptoError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|_| CryptoError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// SHA-256 of `data`. Only for high-entropy secrets such as session tokens; never for
/// guessable personal data (use a blind index).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = random_token(32).expect("token");
        let b = random_token(32).expect("token");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(sha256(b"x").len(), 32);
    }
}
