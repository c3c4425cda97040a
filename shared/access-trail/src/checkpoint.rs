//! Signed heads, for checkpoints the privacy team keeps outside the mesh: a service signs
//! its head with its checkpoint key, and later checks that a head handed back to it is one
//! it signed, so a checkpoint file cannot be made up or altered without the key.

use chrono::{DateTime, Utc};

use crate::keys::MacKey;

/// What a signature covers, versioned.
const DOMAIN: &[u8] = b"pdm-audit-checkpoint/1\0";

/// A service's head at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The service.
    pub service: String,
    /// Position of the head entry (0: empty trail).
    pub seq: i64,
    /// Its MAC (empty when `seq` is 0).
    pub mac: Vec<u8>,
    /// When it was signed.
    pub at: DateTime<Utc>,
}

impl Head {
    fn feed(&self, m: &mut hmac::Hmac<sha2::Sha256>) {
        use hmac::Mac as _;
        m.update(DOMAIN);
        for field in [
            self.service.as_bytes(),
            &self.seq.to_be_bytes(),
            &self.mac,
            self.at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_bytes(),
        ] {
            m.update(&(field.len() as u64).to_be_bytes());
            m.update(field);
        }
    }

    /// The signature of this head under `key`.
    pub fn sign(&self, key: &MacKey) -> Vec<u8> {
        key.mac(|m| self.feed(m))
    }

    /// Whether `signature` is this head's under `key`.
    pub fn verify(&self, key: &MacKey, signature: &[u8]) -> bool {
        key.verify(signature, |m| self.feed(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditKeys;

    #[test]
    fn a_signature_verifies_only_unaltered_and_under_its_key() {
        let key = AuditKeys::derive(&[3; 32], "identity").checkpoint;
        let head = Head {
            service: "identity".into(),
            seq: 12,
            mac: vec![7; 32],
            at: Utc::now(),
        };
        let signature = head.sign(&key);
        assert!(head.verify(&key, &signature));
        let other = AuditKeys::derive(&[3; 32], "consent").checkpoint;
        assert!(!head.verify(&other, &signature));
        for altered in [
            Head {
                seq: 11,
                ..head.clone()
            },
            Head {
                mac: vec![8; 32],
                ..head.clone()
            },
            Head {
                service: "consent".into(),
                ..head.clone()
            },
            Head {
                at: head.at + chrono::Duration::seconds(1),
                ..head.clone()
            },
        ] {
            assert!(!altered.verify(&key, &signature), "{altered:?}");
        }
    }
}
