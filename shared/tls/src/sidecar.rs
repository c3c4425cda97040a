//! Who calls when pdm serves in plaintext behind a mesh sidecar (`tls.enabled = false`):
//! the sidecar terminates mutual TLS and passes the client's verified identity in a
//! header, Istio/Envoy as `x-forwarded-client-cert` (the `URI=` of its last element, the
//! hop the sidecar itself verified), Linkerd as `l5d-client-id`. pdm believes that header
//! only on connections from loopback, where the sidecar of its own pod connects from; a
//! call without one is refused like a call from an unknown caller.
//!
//! SPIFFE ids in pdm's form (`spiffe://<trust domain>/svc/<service>`) are read as such;
//! Kubernetes identities (`spiffe://…/ns/<ns>/sa/<account>`, `<account>.<ns>.serviceaccount.
//! identity.linkerd.…`) are read by service account: `admin` is the privacy team,
//! `client-<name>` a company client, any other name a service of the mesh.

use std::net::SocketAddr;

use http::HeaderMap;

use crate::identity::Caller;

/// Istio/Envoy's header.
pub const XFCC: &str = "x-forwarded-client-cert";
/// Linkerd's header.
pub const L5D: &str = "l5d-client-id";

/// Which sidecar header to believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarHeader {
    /// `x-forwarded-client-cert` only.
    Xfcc,
    /// `l5d-client-id` only.
    L5d,
    /// Either.
    Any,
}

impl SidecarHeader {
    /// From the `tls.sidecar_identity` setting: `xfcc`, `l5d` or `any`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "xfcc" => Some(Self::Xfcc),
            "l5d" => Some(Self::L5d),
            "any" => Some(Self::Any),
            _ => None,
        }
    }
}

/// What plaintext mode trusts.
#[derive(Debug, Clone)]
pub struct Plaintext {
    /// The header believed.
    pub header: SidecarHeader,
    /// The trust domain of pdm-form SPIFFE ids.
    pub trust_domain: String,
    /// The caller assumed for loopback calls without the header (`tls.plaintext_caller`:
    /// tests and development only).
    pub fallback: Option<Caller>,
}

impl Plaintext {
    /// The caller of a request that came from `remote` with `headers`.
    pub fn caller(&self, remote: Option<SocketAddr>, headers: &HeaderMap) -> Option<Caller> {
        if !remote.is_some_and(|r| r.ip().is_loopback()) {
            return None;
        }
        let from_header = match self.header {
            SidecarHeader::Xfcc => xfcc_caller(headers, &self.trust_domain),
            SidecarHeader::L5d => l5d_caller(headers),
            SidecarHeader::Any => {
                xfcc_caller(headers, &self.trust_domain).or_else(|| l5d_caller(headers))
            }
        };
        from_header.or_else(|| self.fallback.clone())
    }
}

/// The caller named by the last element of `x-forwarded-client-cert`.
fn xfcc_caller(headers: &HeaderMap, trust_domain: &str) -> Option<Caller> {
    let value = headers.get_all(XFCC).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?;
    let uri = last.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.eq_ignore_ascii_case("URI")
            .then(|| value.trim_matches('"').to_owned())
    })?;
    Caller::from_spiffe_id(&uri, trust_domain).or_else(|| {
        // spiffe://<domain>/ns/<namespace>/sa/<account>
        let path = uri.strip_prefix("spiffe://")?.split_once('/')?.1;
        let mut parts = path.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("ns"), Some(_), Some("sa"), Some(account), None) => service_account(account),
            _ => None,
        }
    })
}

/// The caller named by `l5d-client-id` (`<account>.<namespace>.serviceaccount.identity…`).
fn l5d_caller(headers: &HeaderMap) -> Option<Caller> {
    let value = headers.get(L5D)?.to_str().ok()?;
    let mut labels = value.split('.');
    let account = labels.next()?;
    let _namespace = labels.next()?;
    (labels.next() == Some("serviceaccount")).then_some(())?;
    service_account(account)
}

/// A Kubernetes service account as a caller.
fn service_account(account: &str) -> Option<Caller> {
    let valid = !account.is_empty()
        && account.len() <= 64
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return None;
    }
    Some(match account {
        "admin" => Caller::Admin,
        _ => match account.strip_prefix("client-") {
            Some(name) if !name.is_empty() => Caller::Client(name.to_owned()),
            _ => Caller::Service(account.to_owned()),
        },
    })
}

/// The header a plaintext client sends to say who it is, as a sidecar would: a sidecar in
/// front of the server replaces it with the identity it verified.
pub fn own_identity(caller: &Caller, trust_domain: &str) -> (http::HeaderName, http::HeaderValue) {
    let value = http::HeaderValue::from_str(&format!("URI={}", caller.spiffe_id(trust_domain)))
        .unwrap_or_else(|_| http::HeaderValue::from_static(""));
    (http::HeaderName::from_static(XFCC), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plaintext(header: SidecarHeader) -> Plaintext {
        Plaintext {
            header,
            trust_domain: "pdm.local".to_owned(),
            fallback: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                *k,
                http::HeaderValue::from_str(v)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("")),
            );
        }
        h
    }

    const LOOPBACK: Option<SocketAddr> = Some(SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 6)),
        40000,
    ));

    #[test]
    fn istio_and_linkerd_identities_are_read() {
        let p = plaintext(SidecarHeader::Any);
        let xfcc = headers(&[(
            XFCC,
            "By=spiffe://cluster.local/ns/pdm/sa/identity;Hash=abc;URI=spiffe://cluster.local/ns/pdm/sa/client-billing",
        )]);
        assert_eq!(
            p.caller(LOOPBACK, &xfcc),
            Some(Caller::Client("billing".into()))
        );
        let ours = headers(&[(XFCC, "Hash=abc;URI=spiffe://pdm.local/svc/rights")]);
        assert_eq!(
            p.caller(LOOPBACK, &ours),
            Some(Caller::Service("rights".into()))
        );
        // The last element is the hop the sidecar verified.
        let appended = headers(&[(
            XFCC,
            "URI=spiffe://pdm.local/admin,By=x;URI=spiffe://cluster.local/ns/pdm/sa/telemetry",
        )]);
        assert_eq!(
            p.caller(LOOPBACK, &appended),
            Some(Caller::Service("telemetry".into()))
        );
        let l5d = headers(&[(
            L5D,
            "admin.pdm.serviceaccount.identity.linkerd.cluster.local",
        )]);
        assert_eq!(p.caller(LOOPBACK, &l5d), Some(Caller::Admin));
    }

    #[test]
    fn only_loopback_is_believed_and_no_header_is_no_caller() {
        let p = plaintext(SidecarHeader::Any);
        let xfcc = headers(&[(XFCC, "URI=spiffe://pdm.local/admin")]);
        let remote = Some(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)),
            40000,
        ));
        assert_eq!(p.caller(remote, &xfcc), None);
        assert_eq!(p.caller(None, &xfcc), None);
        assert_eq!(p.caller(LOOPBACK, &HeaderMap::new()), None);
        // A header the setting does not name is not believed.
        let l5d = headers(&[(
            L5D,
            "admin.pdm.serviceaccount.identity.linkerd.cluster.local",
        )]);
        assert_eq!(plaintext(SidecarHeader::Xfcc).caller(LOOPBACK, &l5d), None);
        assert_eq!(plaintext(SidecarHeader::L5d).caller(LOOPBACK, &xfcc), None);
        // Malformed identities are nobody.
        for bad in [
            "URI=spiffe://cluster.local/ns/pdm/sa/Bad_Name",
            "URI=https://x",
            "nonsense",
        ] {
            assert_eq!(p.caller(LOOPBACK, &headers(&[(XFCC, bad)])), None, "{bad}");
        }
    }

    #[test]
    fn the_fallback_applies_only_on_loopback_without_a_header() {
        let p = Plaintext {
            fallback: Some(Caller::Client("testkit".into())),
            ..plaintext(SidecarHeader::Any)
        };
        assert_eq!(
            p.caller(LOOPBACK, &HeaderMap::new()),
            Some(Caller::Client("testkit".into()))
        );
        let remote = Some(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)),
            1,
        ));
        assert_eq!(p.caller(remote, &HeaderMap::new()), None);
    }
}
