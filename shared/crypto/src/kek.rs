//! The versioned key-encryption keys (KEKs) that wrap subjects' data keys.
//!
//! Version 1 is derived from the root key (`crypto.kek`), so keys stored before
//! versioning existed stay readable. Later versions are keys of their own
//! (`crypto.wrapping_keys`); the newest wraps every new key, and `pdm keys rotate`
//! rewraps the old ones under it. Versions below `crypto.retire_kek_below` are not
//! loaded at all: once retired, a key store backup wrapped under them opens nothing.

use std::collections::BTreeMap;

use crate::{CryptoError, DataKey, Keyring};

/// A KEK version number (1 is the root-derived one).
pub type KekVersion = u32;

/// The KEK versions a process holds, the newest of which wraps new keys.
#[derive(Clone)]
pub struct KekSet {
    rings: BTreeMap<KekVersion, Keyring>,
    current: KekVersion,
}

impl std::fmt::Debug for KekSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekSet")
            .field("versions", &self.versions())
            .field("current", &self.current)
            .finish()
    }
}

impl KekSet {
    /// Version 1 from `root`, the `extra` versions (each ≥ 2) as given, without those
    /// below `retire_below`. Fails when nothing is left to wrap with, or a version repeats.
    pub fn new(
        root: &[u8; 32],
        extra: &[(KekVersion, [u8; 32])],
        retire_below: KekVersion,
    ) -> Result<Self, KekSetError> {
        let mut rings = BTreeMap::new();
        rings.insert(1, Keyring::new(root));
        for (version, key) in extra {
            if *version < 2 {
                return Err(KekSetError::Reserved(*version));
            }
            if rings.insert(*version, Keyring::new(key)).is_some() {
                return Err(KekSetError::Duplicate(*version));
            }
        }
        rings.retain(|version, _| *version >= retire_below);
        let current = *rings.keys().next_back().ok_or(KekSetError::AllRetired)?;
        Ok(Self { rings, current })
    }

    /// Only the root-derived version 1 (tests, and deployments that never rotated).
    pub fn root_only(root: &[u8; 32]) -> Self {
        Self {
            rings: BTreeMap::from([(1, Keyring::new(root))]),
            current: 1,
        }
    }

    /// The version new keys are wrapped under.
    pub fn current(&self) -> KekVersion {
        self.current
    }

    /// The versions held, oldest first.
    pub fn versions(&self) -> Vec<KekVersion> {
        self.rings.keys().copied().collect()
    }

    /// Whether `version` is held.
    pub fn has(&self, version: KekVersion) -> bool {
        self.rings.contains_key(&version)
    }

    /// A fresh data key for `subject`, wrapped under the current version.
    pub fn generate(&self, subject: &str) -> Result<(DataKey, KekVersion, Vec<u8>), CryptoError> {
        let (key, wrapped) = self.ring(self.current)?.generate(subject)?;
        Ok((key, self.current, wrapped))
    }

    /// Unwraps a key stored under `version`.
    pub fn unwrap_key(
        &self,
        subject: &str,
        version: KekVersion,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        self.ring(version)?.unwrap_key(subject, wrapped)
    }

    /// The same data key, wrapped under the current version instead of `version`.
    pub fn rewrap(
        &self,
        subject: &str,
        version: KekVersion,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.ring(version)?
            .rewrap(subject, wrapped, self.ring(self.current)?)
    }

    fn ring(&self, version: KekVersion) -> Result<&Keyring, CryptoError> {
        self.rings
            .get(&version)
            .ok_or(CryptoError::UnknownKek(version))
    }
}

/// Why a set of KEK versions is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KekSetError {
    /// Version 1 (or 0) given as an extra key: 1 is the root's.
    #[error("KEK version {0} is reserved: versions of crypto.wrapping_keys start at 2")]
    Reserved(KekVersion),
    /// The same version twice.
    #[error("KEK version {0} is configured twice")]
    Duplicate(KekVersion),
    /// `retire_below` is above every version.
    #[error("every KEK version is retired: nothing is left to wrap keys with")]
    AllRetired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_wraps_and_every_held_one_unwraps() {
        let set = KekSet::new(&[1; 32], &[(3, [3; 32]), (2, [2; 32])], 0).expect("set");
        assert_eq!((set.current(), set.versions()), (3, vec![1, 2, 3]));
        let (key, version, wrapped) = set.generate("s").expect("generate");
        assert_eq!(version, 3);
        let sealed = key.seal_str("f", "ada").expect("seal");
        let again = set.unwrap_key("s", 3, &wrapped).expect("unwrap");
        assert_eq!(again.open_string("f", &sealed).as_deref(), Ok("ada"));
        assert_eq!(
            set.unwrap_key("s", 2, &wrapped).err(),
            Some(CryptoError::Unauthentic)
        );
    }

    #[test]
    fn version_one_is_the_root_keyring_so_keys_from_before_versioning_still_open() {
        let (key, wrapped) = Keyring::new(&[9; 32]).generate("s").expect("old key");
        let set = KekSet::new(&[9; 32], &[(2, [2; 32])], 0).expect("set");
        let sealed = key.seal_str("f", "ada").expect("seal");
        let opened = set.unwrap_key("s", 1, &wrapped).expect("v1");
        assert_eq!(opened.open_string("f", &sealed).as_deref(), Ok("ada"));
    }

    #[test]
    fn a_rewrapped_key_opens_the_same_data_and_a_retired_version_opens_nothing() {
        let old = KekSet::root_only(&[1; 32]);
        let (key, v1, wrapped) = old.generate("s").expect("generate");
        let sealed = key.seal_str("f", "ada").expect("seal");

        let rotated = KekSet::new(&[1; 32], &[(2, [2; 32])], 0).expect("rotated");
        let rewrapped = rotated.rewrap("s", v1, &wrapped).expect("rewrap");
        let retired = KekSet::new(&[1; 32], &[(2, [2; 32])], 2).expect("retired");
        assert_eq!(retired.versions(), vec![2]);
        let opened = retired.unwrap_key("s", 2, &rewrapped).expect("v2");
        assert_eq!(opened.open_string("f", &sealed).as_deref(), Ok("ada"));
        // A key store backup from before the rotation holds `wrapped` under version 1.
        assert_eq!(
            retired.unwrap_key("s", v1, &wrapped).err(),
            Some(CryptoError::UnknownKek(1))
        );
    }

    #[test]
    fn bad_sets_are_refused() {
        assert_eq!(
            KekSet::new(&[1; 32], &[(1, [2; 32])], 0).err(),
            Some(KekSetError::Reserved(1))
        );
        assert_eq!(
            KekSet::new(&[1; 32], &[(2, [2; 32]), (2, [3; 32])], 0).err(),
            Some(KekSetError::Duplicate(2))
        );
        assert_eq!(
            KekSet::new(&[1; 32], &[(2, [2; 32])], 3).err(),
            Some(KekSetError::AllRetired)
        );
    }
}
