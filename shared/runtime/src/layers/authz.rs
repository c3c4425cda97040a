//! Per-method authorisation from configuration, least privilege by default: a call is
//! allowed only when a rule names its method (or its service with `*`) and the caller.
//! The caller comes from the client certificate; refusals are `PERMISSION_DENIED`, logged
//! with the caller and method, never with request data.

use std::{
    future::ready,
    sync::Arc,
    task::{Context, Poll},
};

use serde::Deserialize;
use tonic::Status;
use tower::{Layer, Service};

use crate::sampled::Sampler;

use super::categories::Categories;

use super::{BoxFuture, is_health_check};
use pdm_tls::{
    identity::{ACTOR, Actor, Caller},
    incoming::PeerInfo,
    sidecar::Plaintext,
};

/// One rule: these methods (`*` for every method), these callers.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Rule {
    /// Full method paths (`/pdm.subject.v1.SubjectDataService/EraseSubject`) or a whole
    /// service (`/pdm.consent.v1.ConsentService/*`).
    pub methods: Vec<String>,
    /// Callers: a service name, `admin`, `client:<name>`, `client:*` or `*`.
    pub callers: Vec<String>,
}

/// The policy: rules, the most specific match deciding.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    exact: std::collections::HashMap<String, Vec<String>>,
    services: std::collections::HashMap<String, Vec<String>>,
    everything: Vec<String>,
    categories: Categories,
}

/// Methods any authenticated caller may use: health and reflection.
fn open_to_all(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl Policy {
    /// A policy from rules; a method named twice adds the callers together.
    pub fn new(rules: &[Rule]) -> Self {
        let mut policy = Self::default();
        for rule in rules {
            for method in &rule.methods {
                let target = if method == "*" {
                    &mut policy.everything
                } else if let Some(service) = method.strip_suffix("/*") {
                    policy.services.entry(service.to_owned()).or_default()
                } else {
                    policy.exact.entry(method.clone()).or_default()
                };
                target.extend(rule.callers.iter().cloned());
            }
        }
        policy
    }

    /// The policy with company clients limited to the data categories granted them.
    #[must_use]
    pub fn with_categories(mut self, categories: Categories) -> Self {
        self.categories = categories;
        self
    }

    /// Whether `caller` may call `path`.
    pub fn allows(&self, path: &str, caller: &Caller) -> bool {
        if open_to_all(path)
            || self
                .everything
                .iter()
                .any(|pattern| caller.matches(pattern))
        {
            return true;
        }
        let callers = self.exact.get(path).or_else(|| {
            let service = path.rsplit_once('/').map_or(path, |(s, _)| s);
            self.services.get(service)
        });
        callers.is_some_and(|c| c.iter().any(|pattern| caller.matches(pattern)))
            && self.categories.permit(path, caller)
    }

    /// Whether a call of the web front made for a signed-in operator may call `path`:
    /// the caller's own rules, or a rule naming `<via>/operator` (the console's methods,
    /// which the web front may not call for a person).
    pub fn allows_acting(&self, path: &str, caller: &Caller, actor: Option<&Actor>) -> bool {
        if self.allows(path, caller) {
            return true;
        }
        let Some(actor) = actor else {
            return false;
        };
        let name = actor.policy_name();
        let callers = self.exact.get(path).or_else(|| {
            let service = path.rsplit_once('/').map_or(path, |(s, _)| s);
            self.services.get(service)
        });
        callers.is_some_and(|c| c.contains(&name))
    }
}

/// Adds [`Authorize`] to a service.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    policy: Option<Arc<Policy>>,
    plaintext: Option<Arc<Plaintext>>,
    sampler: Arc<Sampler>,
}

impl AuthorizeLayer {
    /// Enforces `policy` (`None`: a server outside the mesh's security, which allows
    /// everything); in plaintext mode the caller comes from the sidecar's header as
    /// `plaintext` says.
    pub fn new(policy: Option<Arc<Policy>>, plaintext: Option<Arc<Plaintext>>) -> Self {
        Self {
            policy,
            plaintext,
            sampler: Arc::new(Sampler::new()),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: self.policy.clone(),
            plaintext: self.plaintext.clone(),
            sampler: self.sampler.clone(),
        }
    }
}

/// Refuses calls the policy does not allow; hands the caller to the handlers.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Option<Arc<Policy>>,
    plaintext: Option<Arc<Plaintext>>,
    sampler: Arc<Sampler>,
}

impl<S, B, R> Service<http::Request<B>> for Authorize<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>();
        let caller = match (peer.and_then(|p| p.caller.clone()), &self.plaintext) {
            (Some(caller), _) => Some(caller),
            (None, Some(plaintext)) => {
                plaintext.caller(peer.and_then(|p| p.remote_addr), request.headers())
            }
            (None, None) => None,
        };
        // An operator of the privacy team the web front signed in (believed from the web
        // front only); a malformed one is refused.
        let actor = match Actor::of_call(
            caller.as_ref(),
            request.headers().get(ACTOR).and_then(|v| v.to_str().ok()),
        ) {
            Ok(actor) => actor,
            Err(()) => {
                return Box::pin(ready(Ok(Status::permission_denied(format!(
                    "{ACTOR}: not operator:<name>"
                ))
                .into_http())));
            }
        };
        if let Some(policy) = &self.policy {
            let path = request.uri().path();
            // Health says nothing about anyone: probes need no identity (in plaintext mode
            // a kubelet or a sidecar's probe has none).
            let allowed = is_health_check(path)
                || caller
                    .as_ref()
                    .is_some_and(|c| policy.allows_acting(path, c, actor.as_ref()));
            if !allowed {
                let who = caller
                    .as_ref()
                    .map_or_else(|| "anonymous".to_owned(), ToString::to_string);
                if let Some(left_out) = self.sampler.refusal(&format!("authz {who} {path}")) {
                    tracing::warn!(
                        caller = %who,
                        method = path,
                        left_out,
                        "call refused by the authorisation policy"
                    );
                }
                return Box::pin(ready(Ok(Status::permission_denied(format!(
                    "{who} may not call {path}"
                ))
                .into_http())));
            }
        }
        if let Some(actor) = actor {
            // The operator is the privacy team: handlers that keep a decision to it (rights'
            // extensions and vouching) see it as such, within the methods the policy gives
            // the web front for its operators; the access trail records the operator.
            request.extensions_mut().insert(Caller::Admin);
            request.extensions_mut().insert(actor);
        } else if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::security::policy_from(crate::security::DEFAULT_POLICY, &[]).unwrap_or_default()
    }

    #[test]
    fn only_rights_erases_and_only_retention_purges() {
        let p = policy();
        let erase = "/pdm.subject.v1.SubjectDataService/EraseSubject";
        assert!(p.allows(erase, &Caller::Service("rights".into())));
        for other in [
            Caller::Service("telemetry".into()),
            Caller::Admin,
            Caller::Client("billing".into()),
        ] {
            assert!(!p.allows(erase, &other), "{other}");
        }
        let purge = "/pdm.subject.v1.SubjectDataService/PurgeExpired";
        assert!(p.allows(purge, &Caller::Service("retention".into())));
        assert!(!p.allows(purge, &Caller::Service("rights".into())));
    }

    #[test]
    fn exact_rules_beat_service_rules_and_unknown_methods_are_refused() {
        let p = policy();
        assert!(p.allows(
            "/pdm.identity.v1.IdentityService/CreateAccount",
            &Caller::Client("web".into())
        ));
        assert!(!p.allows(
            "/pdm.identity.v1.IdentityService/CreateAccount",
            &Caller::Service("telemetry".into())
        ));
        assert!(p.allows(
            "/pdm.identity.v1.IdentityService/GetRegion",
            &Caller::Service("consent".into())
        ));
        assert!(p.allows(
            "/pdm.consent.v1.ConsentService/WatchConsentChanges",
            &Caller::Service("telemetry".into())
        ));
        assert!(!p.allows(
            "/pdm.consent.v1.ConsentService/WatchConsentChanges",
            &Caller::Service("transfers".into())
        ));
        assert!(!p.allows("/pdm.nothing.v1.Nope/Do", &Caller::Admin));
        assert!(p.allows(
            "/grpc.health.v1.Health/Check",
            &Caller::Client("probe".into())
        ));
    }

    #[test]
    fn the_transfer_log_is_the_privacy_teams() {
        let p = policy();
        let log = "/pdm.transfers.v1.TransfersService/ListTransferLog";
        assert!(p.allows(log, &Caller::Admin));
        assert!(p.allows(log, &Caller::Service("rights".into())));
        assert!(!p.allows(log, &Caller::Client("demo".into())));
        assert!(p.allows(
            "/pdm.transfers.v1.TransfersService/ListAdequacy",
            &Caller::Client("demo".into())
        ));
    }

    #[test]
    fn allow_all_callers_pass_everything() {
        let p = Policy::new(&[Rule {
            methods: vec!["*".into()],
            callers: vec!["client:testkit".into()],
        }]);
        assert!(p.allows(
            "/pdm.subject.v1.SubjectDataService/EraseSubject",
            &Caller::Client("testkit".into())
        ));
        assert!(!p.allows(
            "/pdm.subject.v1.SubjectDataService/EraseSubject",
            &Caller::Client("other".into())
        ));
    }

    #[test]
    fn the_console_s_methods_are_the_web_s_only_for_a_signed_in_operator() {
        // Data Security & Protection: the queue is the privacy team's, not the people's pages'.
        let p = policy();
        let web = Caller::Service("web".into());
        let operator = Actor::of_call(Some(&web), Some("operator:alice"))
            .ok()
            .flatten();
        let queue = "/pdm.rights.v1.RightsService/ListRequests";
        assert!(!p.allows(queue, &web));
        assert!(!p.allows_acting(queue, &web, None));
        assert!(p.allows_acting(queue, &web, operator.as_ref()));
        // The people's pages still work while an operator acts; nothing else opens.
        let sign_in = "/pdm.identity.v1.IdentityService/Authenticate";
        assert!(p.allows_acting(sign_in, &web, operator.as_ref()));
        let erase = "/pdm.subject.v1.SubjectDataService/EraseSubject";
        assert!(!p.allows_acting(erase, &web, operator.as_ref()));
        let deny = "/pdm.rights.v1.RightsService/DenyRequest";
        assert!(!p.allows_acting(deny, &web, operator.as_ref()));
    }
}
