//! Keyed blind indexes: equality lookups on encrypted fields (find an account by email)
//! without storing the value. HMAC-SHA256 under a key derived from the KEK, so the index
//! cannot be reversed by hashing guesses without the key.

use hmac::Mac;

use crate::mac::{HmacSha256, hmac_sha256};

/// Computes blind indexes.
#[derive(Clone)]
pub struct BlindIndex {
    mac: HmacSha256,
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex { .. }")
    }
}

impl BlindIndex {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            mac: hmac_sha256(key),
        }
    }

    /// The index of `value` in `domain` (e.g. `email`): 32 bytes. Callers normalise the
    /// value first; the same value in two domains gives unrelated indexes.
    pub fn compute(&self, domain: &str, value: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use crate::Keyring;

    #[test]
    fn indexes_are_stable_keyed_and_domain_separated() {
        let a = Keyring::new(&[1u8; 32]);
        let b = Keyring::new(&[2u8; 32]);
        let ix = a.blind_index();
        assert_eq!(
            ix.compute("email", "ada@example.org"),
            ix.compute("email", "ada@example.org")
        );
        assert_ne!(
            ix.compute("email", "ada@example.org"),
            ix.compute("email", "bob@example.org")
        );
        assert_ne!(ix.compute("email", "x"), ix.compute("phone", "x"));
        assert_ne!(
            ix.compute("email", "x"),
            b.blind_index().compute("email", "x")
        );
        assert_eq!(ix.compute("email", "x").len(), 32);
    }
}
