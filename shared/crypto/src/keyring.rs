//! The process-wide keys derived from the key-encryption key (KEK).

use aes_gcm::{Aes256Gcm, KeyInit};
use hmac::Mac;
use zeroize::Zeroizing;

use crate::{
    BlindIndex, CryptoError, DataKey, data_key::open_with, data_key::seal_with, mac::hmac_sha256,
};

/// Domain-separation labels: one KEK yields independent keys for wrapping and indexing.
const WRAP_LABEL: &[u8] = b"pdm/v1/key-wrapping";
const INDEX_LABEL: &[u8] = b"pdm/v1/blind-index";

/// Wraps and unwraps per-subject data keys, and hands out blind indexes.
#[derive(Clone)]
pub struct Keyring {
    wrap: Aes256Gcm,
    index: BlindIndex,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring { .. }")
    }
}

impl Keyring {
    /// Derives the wrapping and indexing keys from a 32-byte KEK.
    pub fn new(kek: &[u8; 32]) -> Self {
        let wrap_key = derive(kek, WRAP_LABEL);
        let index_key = derive(kek, INDEX_LABEL);
        Self {
            wrap: Aes256Gcm::new((&*wrap_key).into()),
            index: BlindIndex::new(&index_key),
        }
    }

    /// The blind index of this keyring.
    pub fn blind_index(&self) -> &BlindIndex {
        &self.index
    }

    /// A fresh data key for `subject`, and its wrapped form to store.
    pub fn generate(&self, subject: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut_slice()).map_err(|_| CryptoError::Random)?;
        let wrapped = seal_with(&self.wrap, &wrap_aad(subject), raw.as_slice())?;
        Ok((DataKey::new(subject, &raw), wrapped))
    }

    /// Unwraps a stored data key. Fails if it was wrapped for another subject or KEK.
    pub fn unwrap_key(&self, subject: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let raw = self.unwrap_raw(subject, wrapped)?;
        Ok(DataKey::new(subject, &raw))
    }

    /// Unwraps a key wrapped here and wraps it again under `to` (key rotation): the data
    /// key itself, and so every ciphertext sealed with it, stays the same.
    pub fn rewrap(
        &self,
        subject: &str,
        wrapped: &[u8],
        to: &Keyring,
    ) -> Result<Vec<u8>, CryptoError> {
        let raw = self.unwrap_raw(subject, wrapped)?;
        seal_with(&to.wrap, &wrap_aad(subject), raw.as_slice())
    }

    fn unwrap_raw(
        &self,
        subject: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let raw = Zeroizing::new(open_with(&self.wrap, &wrap_aad(subject), wrapped)?);
        let raw: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Unauthentic)?;
        Ok(Zeroizing::new(raw))
    }
}

fn wrap_aad(subject: &str) -> Vec<u8> {
    [b"subject-key\0".as_slice(), subject.as_bytes()].concat()
}

fn derive(kek: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = hmac_sha256(kek);
    mac.update(label);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_for_its_subject_and_kek() {
        let ring = Keyring::new(&[1u8; 32]);
        let (key, wrapped) = ring.generate("subject-a").expect("generate");
        let sealed = key
            .seal("accounts.email", b"ada@example.org")
            .expect("seal");

        let again = ring.unwrap_key("subject-a", &wrapped).expect("unwrap");
        assert_eq!(
            again.open("accounts.email", &sealed).expect("open"),
            b"ada@example.org"
        );

        assert_eq!(
            ring.unwrap_key("subject-b", &wrapped).err(),
            Some(CryptoError::Unauthentic)
        );
        let other = Keyring::new(&[2u8; 32]);
        assert_eq!(
            other.unwrap_key("subject-a", &wrapped).err(),
            Some(CryptoError::Unauthentic)
        );
    }
}
