//! Loading the key-encryption key (KEK) that wraps every per-subject data key.

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
    fn a_configured_key_wins_and_must_be_32_bytes() {
        let key = STANDARD.encode([7u8; 32]);
        let settings = Settings::with_overrides([("crypto.kek", key.as_str())]).expect("settings");
        assert_eq!(load_kek(&settings).expect("config").0, [7u8; 32]);
        assert!(decode_kek(&STANDARD.encode([1u8; 16])).is_err());
        assert!(decode_kek("not base64!").is_err());
    }
}
