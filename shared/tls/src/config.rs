//! rustls configurations from PEM files, rebuilt when the files change: every new
//! connection uses the latest certificates, without a restart.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig, crypto::CryptoProvider, server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_util::sync::CancellationToken;

/// The files of one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) trusted for peers.
    pub ca: PathBuf,
    /// Own certificate chain.
    pub cert: PathBuf,
    /// Own private key.
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_material(
    files: &TlsFiles,
) -> anyhow::Result<(
    RootCertStore,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
)> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.ca.display()))?
    {
        roots.add(cert.map_err(|e| anyhow::anyhow!("{}: {e}", files.ca.display()))?)?;
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: no certificate",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.key.display()))?;
    Ok((roots, chain, key))
}

/// A server configuration requiring a client certificate from the CA.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let (roots, chain, key) = read_material(files)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A client configuration presenting our certificate and trusting the CA.
pub fn client_config(files: &TlsFiles) -> anyhow::Result<ClientConfig> {
    let (roots, chain, key) = read_material(files)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn stamp(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// A configuration kept up to date with its files.
#[derive(Debug)]
pub struct Reloading<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Reloading<T> {
    /// A configuration that never changes (for test clients).
    pub fn fixed(config: T) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Loads a configuration with `build` and reloads it every `interval` while its files
/// change, until `stop`. A reload that fails keeps the previous configuration (logged).
pub fn reloading<T, F>(
    files: TlsFiles,
    interval: Duration,
    stop: CancellationToken,
    build: F,
) -> anyhow::Result<Arc<Reloading<T>>>
where
    T: Send + Sync + 'static,
    F: Fn(&TlsFiles) -> anyhow::Result<T> + Send + Sync + 'static,
{
    let initial = build(&files)?;
    let shared = Arc::new(Reloading {
        current: RwLock::new(Arc::new(initial)),
    });
    let weak = Arc::downgrade(&shared);
    let mut seen = stamp(&files);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let Some(shared) = weak.upgrade() else { return };
            let now = stamp(&files);
            if now == seen {
                continue;
            }
            match build(&files) {
                Ok(config) => {
                    *shared.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                    seen = now;
                    tracing::info!(cert = %files.cert.display(), "certificates reloaded");
                }
                // Files are often replaced in several steps: try again next time.
                Err(error) => {
                    tracing::warn!(%error, "certificate reload failed; keeping the previous ones")
                }
            }
        }
    });
    Ok(shared)
}

/// True when the path names a readable file.
pub fn exists(path: &Path) -> bool {
    path.is_file()
}
