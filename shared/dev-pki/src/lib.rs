//! A development PKI: one CA, a certificate per service (server and client use), one for
//! the `pdm` command line (admin) and for company clients. `pdm certs init` writes them;
//! tests make them in memory.
//!
//! Development and tests only: no service depends on this crate, so certificate
//! generation (rcgen) is not in their dependency tree.

#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use anyhow::Context as _;
use pdm_tls::{
    identity::Caller,
    layout::{ca_path, paths, write_private},
};

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Pem {
    /// Certificate chain (leaf first).
    pub cert: String,
    /// Private key.
    pub key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem { .. }")
    }
}

/// A certificate authority able to issue leaves.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert: String,
    trust_domain: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA for `trust_domain`.
    pub fn new(trust_domain: &str, name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert: cert.pem(),
            issuer: Issuer::new(params, key),
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// A leaf for `caller`: its SPIFFE id, and for services the DNS names and loopback
    /// addresses it is reached at; usable as server and client certificate.
    pub fn issue(&self, caller: &Caller, dns_names: &[String]) -> Result<Pem, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, caller.to_string());
        params.subject_alt_names.push(SanType::URI(
            caller.spiffe_id(&self.trust_domain).try_into()?,
        ));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// DNS names a service answers to: loopback, its name, and its Kubernetes names.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        "localhost".to_owned(),
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Writes a development PKI: a CA, a certificate per service, one for the command line
/// (`admin`) and one per named company client. Existing files are kept unless `force`.
/// Returns the files written.
pub fn init_certificates(
    dir: &Path,
    trust_domain: &str,
    namespace: &str,
    services: &[&str],
    clients: &[&str],
    force: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_path = ca_path(dir);
    if ca_path.exists() && !force {
        return Ok(Vec::new());
    }
    let ca = Authority::new(trust_domain, "pdm development CA")?;
    write_private(&ca_path, &ca.cert, false)?;
    let mut written = vec![ca_path];
    for service in services {
        let caller = Caller::Service((*service).to_owned());
        written.extend(write_identity(
            dir,
            &ca,
            &caller,
            &service_dns_names(service, namespace),
        )?);
    }
    written.extend(write_identity(dir, &ca, &Caller::Admin, &[])?);
    for client in clients {
        written.extend(write_identity(
            dir,
            &ca,
            &Caller::Client((*client).to_owned()),
            &[],
        )?);
    }
    Ok(written)
}

/// Issues a certificate for `caller` from `ca` and writes it (and its key, readable by
/// the owner alone) where [`Security`] looks for it. Returns the two paths.
pub fn write_identity(
    dir: &Path,
    ca: &Authority,
    caller: &Caller,
    dns_names: &[String],
) -> anyhow::Result<[PathBuf; 2]> {
    let pem = ca.issue(caller, dns_names)?;
    let (cert, key) = paths(dir, caller);
    write_private(&cert, &pem.cert, false)?;
    write_private(&key, &pem.key, true)?;
    Ok([cert, key])
}
