//! Field encryption at rest with per-subject data keys (AES-256-GCM), wrapped by a
//! versioned key-encryption key; keyed blind indexes for lookups; and the key store, a
//! database apart from the data, whose deletion is crypto-shredding: once a subject's key
//! is gone, every copy of the data databases (backups included) is unreadable for them.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

mod blind_index;
mod data_key;
mod kek;
pub mod key_store;
mod keyring;
mod mac;
pub mod migration;
mod tokens;

pub use blind_index::BlindIndex;
pub use data_key::DataKey;
pub use kek::{KekSet, KekSetError, KekVersion};
pub use key_store::KeyStore;
pub use keyring::Keyring;
pub use mac::{HmacSha256, hmac_sha256};
pub use tokens::{random_token, sha256};

/// Why a cryptographic operation failed. Carries no key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext is malformed, was tampered with, or belongs to another key or field.
    #[error("ciphertext could not be authenticated")]
    Unauthentic,
    /// A ciphertext written by an unknown format version.
    #[error("unknown ciphertext version {0}")]
    UnknownVersion(u8),
    /// Decrypted text that should be UTF-8 is not.
    #[error("decrypted field is not UTF-8")]
    NotUtf8,
    /// The operating system gave no randomness.
    #[error("no randomness available")]
    Random,
    /// A key was wrapped under a key-encryption key version this process does not have
    /// (retired, or never configured here).
    #[error("key-encryption key version {0} is not configured")]
    UnknownKek(u32),
}
