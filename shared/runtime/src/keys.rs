//! Loading the root key (`crypto.kek`) and the versioned key-encryption keys (KEKs) that
//! wrap every per-subject data key.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::settings::Settings;

/// Length of the key-encryption key in bytes (AES-256).
pub const KEK_LEN: usize = 32;

/// Why the key-encryption key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// The key is not 32 bytes of base64.
    #[error("key-encryption key must be 32 bytes, base64-encoded")]
    Malformed,
    /// The key file could not be read or created.
    #[error("key-encryption key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No randomness.
    #[error("no randomness available to generate a key")]
    Random,
}

/// Why `crypto.wrapping_keys` could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WrappingKeysError {
    /// An entry is not `v<N>:<base64 of 32 bytes>`.
    #[error("entry {0} is not v<N>:<32 bytes, base64> with N of at least 2")]
    Malformed(usize),
    /// A version appears twice.
    #[error("version {0} appears twice")]
    Duplicate(u32),
}

/// Parses `v2:<base64>,v3:<base64>` (commas or newlines between entries) into versions
/// and keys. Never echoes a key in its error.
pub fn parse_wrapping_keys(text: &str) -> Result<Vec<(u32, [u8; KEK_LEN])>, WrappingKeysError> {
    let mut keys: Vec<(u32, [u8; KEK_LEN])> = Vec::new();
    let entries = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        let malformed = || WrappingKeysError::Malformed(i + 1);
        let (version, key) = entry.split_once(':').ok_or_else(malformed)?;
        let version: u32 = version
            .strip_prefix('v')
            .and_then(|v| v.parse().ok())
            .filter(|v| *v >= 2)
            .ok_or_else(malformed)?;
        let key = decode_kek(key).map_err(|_| malformed())?;
        if keys.iter().any(|(v, _)| *v == version) {
            return Err(WrappingKeysError::Duplicate(version));
        }
        keys.push((version, key));
    }
    Ok(keys)
}

/// The KEK versions of the configuration: version 1 from `root`, then
/// `crypto.wrapping_keys` (or the file it names), without the retired ones.
pub fn load_kek_set(
    settings: &Settings,
    root: &[u8; KEK_LEN],
) -> anyhow::Result<pdm_crypto::KekSet> {
    let crypto = &settings.crypto;
    let text = if crypto.wrapping_keys.is_empty() && !crypto.wrapping_keys_file.is_empty() {
        std::fs::read_to_string(&crypto.wrapping_keys_file).map_err(|e| {
            anyhow::anyhow!(
                "crypto.wrapping_keys_file {}: {e}",
                crypto.wrapping_keys_file
            )
        })?
    } else {
        crypto.wrapping_keys.clone()
    };
    let extra =
        parse_wrapping_keys(&text).map_err(|e| anyhow::anyhow!("crypto.wrapping_keys: {e}"))?;
    Ok(pdm_crypto::KekSet::new(
        root,
        &extra,
        crypto.retire_kek_below,
    )?)
}

/// Decodes a base64 KEK.
pub fn decode_kek(text: &str) -> Result<[u8; KEK_LEN], KekError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| KekError::Malformed)?;
    bytes.try_into().map_err(|_| KekError::Malformed)
}

/// Where the KEK came from, for the start-up log (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// `crypto.kek`.
    Config,
    /// A file named by `crypto.kek_file`.
    File(PathBuf),
    /// A development key generated on first start.
    Generated(PathBuf),
}

/// Loads the KEK from `crypto.kek`, else `crypto.kek_file`, else the development key
/// under `<data_dir>/secrets/kek`, generating it on first start.
pub fn load_kek(settings: &Settings) -> Result<([u8; KEK_LEN], KekSource), KekError> {
    if !settings.crypto.kek.is_empty() {
        return Ok((decode_kek(&settings.crypto.kek)?, KekSource::Config));
    }
    if !settings.crypto.kek_file.is_empty() {
        let path = PathBuf::from(&settings.crypto.kek_file);
        return Ok((read_kek_file(&path)?, KekSource::File(path)));
    }
    let path = settings.data_dir.join("secrets").join("kek");
    if path.exists() {
        return Ok((read_kek_file(&path)?, KekSource::File(path)));
    }
    let key = generate_kek_file(&path)?;
    Ok((key, KekSource::Generated(path)))
}

fn read_kek_file(path: &Path) -> Result<[u8; KEK_LEN], KekError> {
    let text = std::fs::read_to_string(path).map_err(|source| KekError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_kek(&text)
}

fn generate_kek_file(path: &Path) -> Result<[u8; KEK_LEN], KekError> {
    let io = |source| KekError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut key = [0u8; KEK_LEN];
    getrandom::fill(&mut key).map_err(|_| KekError::Random)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(STANDARD.encode(key).as_bytes())
                .map_err(io)?;
            Ok(key)
        }
        // Another service of the same process generated it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_kek_file(path),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_reused_on_the_next_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings::with_overrides([("data_dir", dir.path().display().to_string())])
            .expect("settings");
        let (first, source) = load_kek(&settings).expect("generated");
        assert!(matches!(source, KekSource::Generated(_)));
        let (second, source) = load_kek(&settings).expect("read back");
        assert!(matches!(source, KekSource::File(_)));
        assert_eq!(first, second);
    }

    #[test]
    fn wrapping_keys_are_versioned_and_never_echoed_when_wrong() {
        let two = STANDARD.encode([2u8; 32]);
        let three = STANDARD.encode([3u8; 32]);
        let parsed = parse_wrapping_keys(&format!(" v3:{three},\nv2:{two} ")).expect("parsed");
        assert_eq!(parsed, vec![(3, [3u8; 32]), (2, [2u8; 32])]);
        assert_eq!(parse_wrapping_keys("").expect("none"), vec![]);
        for bad in [
            format!("v1:{two}"),
            format!("2:{two}"),
            "v2:short".to_owned(),
        ] {
            let err = parse_wrapping_keys(&bad).expect_err("refused");
            assert_eq!(err, WrappingKeysError::Malformed(1));
            assert!(!err.to_string().contains(&two));
        }
        assert_eq!(
            parse_wrapping_keys(&format!("v2:{two},v2:{three}")),
            Err(WrappingKeysError::Duplicate(2))
        );
        let settings = Settings::with_overrides([
            ("crypto.wrapping_keys", format!("v2:{two},v3:{three}")),
            ("crypto.retire_kek_below", "3".to_owned()),
        ])
        .expect("settings");
        let set = load_kek_set(&settings, &[1u8; 32]).expect("set");
        assert_eq!((set.versions(), set.current()), (vec![3], 3));
    }

    #[test]
    fn a_configured_key_wins_and_must_be_32_bytes() {
        let key = STANDARD.encode([7u8; 32]);
        let settings = Settings::with_overrides([("crypto.kek", key.as_str())]).expect("settings");
        assert_eq!(load_kek(&settings).expect("config").0, [7u8; 32]);
        assert!(decode_kek(&STANDARD.encode([1u8; 16])).is_err());
        assert!(decode_kek("not base64!").is_err());
    }
}
