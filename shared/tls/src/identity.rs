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

/// Metadata the web front adds to a call it makes for an operator of the privacy team
/// signed in on its console: `operator:<name>`. Believed only from [`ACTOR_VIA`]; the
/// access trail records the operator's name with the call.
pub const ACTOR: &str = "x-pdm-actor";
/// The one caller whose [`ACTOR`] metadata is believed: the web front, which signs its
/// operators in with a password and a second factor.
pub const ACTOR_VIA: &str = "web";

/// An operator of the privacy team acting through the web front's console.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The service the call came through (its certificate).
    pub via: String,
    /// The operator's account name.
    pub operator: String,
}

impl Actor {
    /// The actor a call carries: `Ok(None)` without [`ACTOR`] metadata or from a caller
    /// other than [`ACTOR_VIA`] (not believed, so not recorded); `Err(())` when the web
    /// front sends a malformed one.
    #[allow(clippy::result_unit_err)]
    pub fn of_call(caller: Option<&Caller>, value: Option<&str>) -> Result<Option<Self>, ()> {
        let (Some(Caller::Service(via)), Some(value)) = (caller, value) else {
            return Ok(None);
        };
        if via != ACTOR_VIA {
            return Ok(None);
        }
        let operator = value.strip_prefix("operator:").ok_or(())?;
        if !valid_operator(operator) {
            return Err(());
        }
        Ok(Some(Self {
            via: via.clone(),
            operator: operator.to_owned(),
        }))
    }

    /// The metadata value naming `operator`.
    pub fn header_value(operator: &str) -> String {
        format!("operator:{operator}")
    }

    /// The name the authorisation policy grants methods to: `web/operator` (calls of the
    /// web front made for a signed-in operator, and only those).
    pub fn policy_name(&self) -> String {
        format!("{}/operator", self.via)
    }
}

/// An operator's account name: 1 to 64 lowercase letters, digits, `.`, `-` or `_`,
/// starting with a letter.
pub fn valid_operator(name: &str) -> bool {
    name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
}

impl fmt::Display for Actor {
    /// `web/operator:<name>`, as the access trail records the caller.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/operator:{}", self.via, self.operator)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_is_believed_only_from_the_web_front() {
        let web = Caller::Service("web".to_owned());
        let actor = Actor::of_call(Some(&web), Some("operator:alice"))
            .ok()
            .flatten();
        assert_eq!(
            actor.as_ref().map(ToString::to_string).as_deref(),
            Some("web/operator:alice")
        );
        assert_eq!(
            actor.map(|a| a.policy_name()).as_deref(),
            Some("web/operator")
        );
        // Another service or a client naming an operator is not believed (nor recorded).
        for other in [
            Caller::Service("rights".to_owned()),
            Caller::Client("web".to_owned()),
            Caller::Admin,
        ] {
            assert_eq!(
                Actor::of_call(Some(&other), Some("operator:alice")),
                Ok(None)
            );
        }
        assert_eq!(Actor::of_call(Some(&web), None), Ok(None));
        for bad in [
            "alice",
            "operator:",
            "operator:Alice",
            "operator:a b",
            "operator:1a",
        ] {
            assert_eq!(Actor::of_call(Some(&web), Some(bad)), Err(()), "{bad}");
        }
        assert!(!valid_operator(&"a".repeat(65)));
        assert!(valid_operator("dpo.jane-doe_2"));
    }
}
