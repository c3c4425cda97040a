//! A subject's data key: seals and opens that subject's fields.
//!
//! Sealed format: `version (1 byte) || nonce (12 bytes) || ciphertext and tag`. The
//! associated data binds a ciphertext to its subject and field, so a value copied into
//! another row or column fails to open instead of being read as someone else's.

use std::cell::RefCell;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadInOut, Payload},
};

use crate::CryptoError;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// Random bytes drawn from the operating system at once for nonces.
const NONCE_POOL: usize = 4092;

thread_local! {
    /// Unused random bytes of this thread, and how many of them are used.
    static NONCES: RefCell<([u8; NONCE_POOL], usize)> = const { RefCell::new(([0; NONCE_POOL], NONCE_POOL)) };
}

/// A fresh random nonce. The operating system's random bytes are drawn 4 KiB at a time
/// and each is handed out once: a getrandom call per sealed value cost more than the
/// AES-GCM itself when telemetry sealed every ingested event (perf, 2026-12-06).
/// Nonces are stored in the clear beside their ciphertext, so bytes waiting in this
/// buffer are no secret; what matters is that each is random and used once.
fn fresh_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    NONCES.with_borrow_mut(|(pool, used)| {
        if *used + NONCE_LEN > NONCE_POOL {
            getrandom::fill(pool).map_err(|_| CryptoError::Random)?;
            *used = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&pool[*used..*used + NONCE_LEN]);
        *used += NONCE_LEN;
        Ok(nonce)
    })
}

/// One subject's data-encryption key.
#[derive(Clone)]
pub struct DataKey {
    subject: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey { .. }")
    }
}

impl DataKey {
    pub(crate) fn new(subject: &str, raw: &[u8; 32]) -> Self {
        Self {
            subject: subject.to_owned(),
            cipher: Aes256Gcm::new(raw.into()),
        }
    }

    /// Encrypts `plaintext` for `field` (e.g. `accounts.email`).
    pub fn seal(&self, field: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.cipher, &self.aad(field), plaintext)
    }

    /// Encrypts a string field.
    pub fn seal_str(&self, field: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(field, plaintext.as_bytes())
    }

    /// Decrypts what [`DataKey::seal`] produced for the same subject and field.
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.cipher, &self.aad(field), sealed)
    }

    /// Decrypts a string field.
    pub fn open_string(&self, field: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(field, sealed)?).map_err(|_| CryptoError::NotUtf8)
    }

    fn aad(&self, field: &str) -> Vec<u8> {
        [self.subject.as_bytes(), b"\0", field.as_bytes()].concat()
    }
}

pub(crate) fn seal_with(
    cipher: &Aes256Gcm,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = fresh_nonce()?;
    // Encrypted where it will be returned: no second buffer and copy per value.
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::from(nonce),
            aad,
            out[1 + NONCE_LEN..].as_mut().into(),
        )
        .map_err(|_| CryptoError::Unauthentic)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

pub(crate) fn open_with(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (&version, rest) = sealed.split_first().ok_or(CryptoError::Unauthentic)?;
    if version != VERSION {
        return Err(CryptoError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN {
        return Err(CryptoError::Unauthentic);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Unauthentic)?;
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(subject: &str) -> DataKey {
        DataKey::new(subject, &[9u8; 32])
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let k = key("s1");
        let sealed = k.seal_str("accounts.first_name", "Ada").expect("seal");
        assert!(!sealed.windows(3).any(|w| w == b"Ada"));
        assert_eq!(
            k.open_string("accounts.first_name", &sealed).as_deref(),
            Ok("Ada")
        );
    }

    #[test]
    fn nonces_never_repeat_across_refills_of_the_pool() {
        let n = 3 * NONCE_POOL / NONCE_LEN + 5;
        let nonces: std::collections::HashSet<[u8; NONCE_LEN]> =
            (0..n).map(|_| fresh_nonce().expect("nonce")).collect();
        assert_eq!(nonces.len(), n);
        assert!(!nonces.contains(&[0u8; NONCE_LEN]));
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let k = key("s1");
        assert_ne!(k.seal_str("f", "x").ok(), k.seal_str("f", "x").ok());
    }

    #[test]
    fn a_ciphertext_moved_to_another_field_or_subject_does_not_open() {
        let sealed = key("s1").seal_str("accounts.email", "a@b.c").expect("seal");
        assert_eq!(
            key("s1").open("accounts.phone", &sealed),
            Err(CryptoError::Unauthentic)
        );
        assert_eq!(
            key("s2").open("accounts.email", &sealed),
            Err(CryptoError::Unauthentic)
        );
    }

    #[test]
    fn tampering_and_garbage_are_detected() {
        let k = key("s1");
        let mut sealed = k.seal_str("f", "hello").expect("seal");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(k.open("f", &sealed), Err(CryptoError::Unauthentic));
        assert_eq!(k.open("f", &[]), Err(CryptoError::Unauthentic));
        assert_eq!(k.open("f", &[1, 2, 3]), Err(CryptoError::Unauthentic));
        assert_eq!(k.open("f", &[7; 40]), Err(CryptoError::UnknownVersion(7)));
    }
}
