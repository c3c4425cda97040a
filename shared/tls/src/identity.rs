//! Who is calling: the SPIFFE-style URI in the client certificate's subject alternative
//! names, e.g. `spiffe://pdm.local/svc/telemetry`, `spiffe://pdm.local/admin`,
//! `spiffe://pdm.local/client/billing`.

use std::fmt;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A service of the mesh.
    Service(String),
    /// The privacy team's command line.
    Admin,
    /// A company service calling the mesh.
    Client(String),
}

/// Metadata a mesh service adds when it checks a credential for one of its own callers
/// (rights verifying a password for a client's request), so the identity service throttles
/// per original client. Believed only from a service of the mesh.
pub const ON_BEHALF_OF: &str = "pdm-on-behalf-of";

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(name) => f.write_str(name),
            Self::Admin => f.write_str("admin"),
            Self::Client(name) => write!(f, "client:{name}"),
        }
    }
}

impl Caller {
    /// Who a credential check is for: the caller, or, when a service of the mesh names
    /// the caller it acts for in `pdm-on-behalf-of`, that one.
    pub fn on_behalf_of(caller: Option<&Self>, metadata: &tonic::metadata::MetadataMap) -> String {
        match caller {
            Some(Self::Service(service)) => metadata
                .get(ON_BEHALF_OF)
                .and_then(|v| v.to_str().ok())
                .and_then(Self::from_name)
                .map_or_else(|| service.clone(), |c| c.to_string()),
            Some(other) => other.to_string(),
            None => "anonymous".to_owned(),
        }
    }

    /// A caller by the name policies use: `admin`, `client:<name>` or a service's name.
    pub fn from_name(name: &str) -> Option<Self> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        match name {
            "admin" => Some(Self::Admin),
            _ => match name.strip_prefix("client:") {
                Some(client) if valid(client) => Some(Self::Client(client.to_owned())),
                Some(_) => None,
                None if valid(name) => Some(Self::Service(name.to_owned())),
                None => None,
            },
        }
    }

    /// The SPIFFE id of this caller in `trust_domain`.
    pub fn spiffe_id(&self, trust_domain: &str) -> String {
        match self {
            Self::Service(name) => format!("spiffe://{trust_domain}/svc/{name}"),
            Self::Admin => format!("spiffe://{trust_domain}/admin"),
            Self::Client(name) => format!("spiffe://{trust_domain}/client/{name}"),
        }
    }

    /// Parses a SPIFFE id of `trust_domain`.
    pub fn from_spiffe_id(uri: &str, trust_domain: &str) -> Option<Self> {
        let path = uri
            .strip_prefix("spiffe://")?
            .strip_prefix(trust_domain)?
            .strip_prefix('/')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        match path.split_once('/') {
            None if path == "admin" => Some(Self::Admin),
            Some(("svc", name)) if valid(name) => Some(Self::Service(name.to_owned())),
            Some(("client", name)) if valid(name) => Some(Self::Client(name.to_owned())),
            _ => None,
        }
    }

    /// The caller named by a DER certificate's URI SANs.
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => {
                Self::from_spiffe_id(uri, trust_domain)
            }
            _ => None,
        })
    }

    /// Whether a policy pattern matches: a service name, `admin`, `client:<name>`,
    /// `client:*` (any client) or `*` (anyone authenticated).
    pub fn matches(&self, pattern: &str) -> bool {
        match (pattern, self) {
            ("*", _) => true,
            ("client:*", Self::Client(_)) => true,
            _ => self.to_string() == pattern,
        }
    }
}
