//! The trail's keys, derived from the key-encryption key (KEK) and never stored: one to
//! chain a service's entries, one to sign its checkpoints. Both are per service, so one
//! service's entries or checkpoints cannot be passed off as another's.

use hmac::Mac;
use pdm_crypto::{HmacSha256, hmac_sha256};

/// Domain-separation labels (the KEK's other uses have labels of their own).
const CHAIN_LABEL: &str = "pdm/v1/audit-chain/";
const CHECKPOINT_LABEL: &str = "pdm/v1/audit-checkpoint/";

/// A 32-byte HMAC-SHA256 key.
#[derive(Clone)]
pub struct MacKey([u8; 32]);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("MacKey { .. }")
    }
}

impl MacKey {
    /// A MAC under this key, fed by `feed`.
    pub fn mac(&self, feed: impl FnOnce(&mut HmacSha256)) -> Vec<u8> {
        let mut mac = self.hmac();
        feed(&mut mac);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the MAC of what `feed` gives (compared in constant time).
    pub fn verify(&self, tag: &[u8], feed: impl FnOnce(&mut HmacSha256)) -> bool {
        let mut mac = self.hmac();
        feed(&mut mac);
        mac.verify_slice(tag).is_ok()
    }

    fn hmac(&self) -> HmacSha256 {
        hmac_sha256(&self.0)
    }
}

/// The keys of one service's trail.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    /// Chains the entries.
    pub chain: MacKey,
    /// Signs checkpoints of the head.
    pub checkpoint: MacKey,
}

impl AuditKeys {
    /// The keys of `service`'s trail under `kek`.
    pub fn derive(kek: &[u8; 32], service: &str) -> Self {
        Self {
            chain: derive(kek, CHAIN_LABEL, service),
            checkpoint: derive(kek, CHECKPOINT_LABEL, service),
        }
    }
}

fn derive(kek: &[u8; 32], label: &str, service: &str) -> MacKey {
    let kek = MacKey(*kek);
    let tag = kek.mac(|m| {
        m.update(label.as_bytes());
        m.update(service.as_bytes());
    });
    let mut key = [0u8; 32];
    key.copy_from_slice(&tag);
    MacKey(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_purpose_service_and_kek() {
        let a = AuditKeys::derive(&[1; 32], "identity");
        let tag = |k: &MacKey| k.mac(|m| m.update(b"x"));
        assert_ne!(tag(&a.chain), tag(&a.checkpoint));
        assert_ne!(
            tag(&a.chain),
            tag(&AuditKeys::derive(&[1; 32], "consent").chain)
        );
        assert_ne!(
            tag(&a.chain),
            tag(&AuditKeys::derive(&[2; 32], "identity").chain)
        );
        assert_eq!(
            tag(&a.chain),
            tag(&AuditKeys::derive(&[1; 32], "identity").chain)
        );
        assert!(a.chain.verify(&tag(&a.chain), |m| m.update(b"x")));
        assert!(!a.chain.verify(&tag(&a.chain), |m| m.update(b"y")));
    }
}
