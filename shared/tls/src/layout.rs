//! Where an identity's files live in a certificate directory: the layout `pdm certs init`
//! writes and every service reads, and how its files are written.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::{config::TlsFiles, identity::Caller};

/// The certificate and key paths of `caller` in `dir`.
pub fn paths(dir: &Path, caller: &Caller) -> (PathBuf, PathBuf) {
    let name = match caller {
        Caller::Service(name) => name.clone(),
        Caller::Admin => "admin".to_owned(),
        Caller::Client(name) => format!("client-{name}"),
    };
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// The CA file of a certificate directory.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// The three files `caller` uses from `dir`.
pub fn files(dir: &Path, caller: &Caller) -> TlsFiles {
    let (cert, key) = paths(dir, caller);
    TlsFiles {
        ca: ca_path(dir),
        cert,
        key,
    }
}

/// Writes a PEM file (a key with owner-only permissions).
pub fn write_private(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_caller_has_its_own_file_names() {
        let dir = Path::new("/certs");
        let (cert, key) = paths(dir, &Caller::Service("consent".into()));
        assert_eq!(
            (cert.as_path(), key.as_path()),
            (
                Path::new("/certs/consent.pem"),
                Path::new("/certs/consent.key")
            )
        );
        assert_eq!(paths(dir, &Caller::Admin).0, Path::new("/certs/admin.pem"));
        assert_eq!(
            paths(dir, &Caller::Client("crm".into())).0,
            Path::new("/certs/client-crm.pem")
        );
        assert_eq!(files(dir, &Caller::Admin).ca, Path::new("/certs/ca.pem"));
    }
}
