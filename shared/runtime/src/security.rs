//! The process's security material: certificates (mutual TLS, reloaded when their files
//! change), the per-method caller policy, and per-caller rate limits. Built once per
//! process and shared by its services.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use rustls::{ClientConfig, ServerConfig};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::{
    layers::{
        authz::{Policy, Rule},
        categories::{Categories, Category, Grant},
        rate_limit::{Limits, Rate},
    },
    settings::Settings,
};
use pdm_tls::{
    config::{Reloading, TlsFiles, client_config, reloading, server_config},
    identity::Caller,
    layout,
    sidecar::{Plaintext, SidecarHeader, own_identity},
};

/// The built-in per-method policy.
pub const DEFAULT_POLICY: &str = include_str!("policy.toml");

#[derive(Debug, Deserialize)]
struct PolicyFile {
    rules: Vec<Rule>,
    #[serde(default)]
    categories: Vec<Category>,
    #[serde(default)]
    grants: Vec<Grant>,
}

fn read_policy(text: &str) -> anyhow::Result<PolicyFile> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()?
        .try_deserialize()
        .context("reading the authorisation policy")
}

/// The policy of a policy file, with the `allow_all` callers (empty items skipped) allowed
/// every method; data categories and grants checked.
pub fn policy_from(text: &str, allow_all: &[String]) -> anyhow::Result<Policy> {
    let file = read_policy(text)?;
    let mut rules = file.rules;
    let allow_all: Vec<String> = allow_all
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if !allow_all.is_empty() {
        rules.push(Rule {
            methods: vec!["*".to_owned()],
            callers: allow_all,
        });
    }
    let categories = Categories::new(&file.categories, &file.grants)
        .map_err(|e| anyhow::anyhow!("authorisation policy: {e}"))?;
    Ok(Policy::new(&rules).with_categories(categories))
}

/// Parses a policy file.
pub fn parse_policy(text: &str) -> anyhow::Result<Vec<Rule>> {
    Ok(read_policy(text)?.rules)
}

/// Security for a process.
#[derive(Debug)]
pub struct Security {
    tls: Option<TlsMaterial>,
    plaintext: Option<Arc<Plaintext>>,
    policy: Arc<Policy>,
    limits: Arc<Limits>,
}

#[derive(Debug)]
struct TlsMaterial {
    dir: PathBuf,
    trust_domain: String,
    interval: Duration,
    stop: CancellationToken,
    servers: Mutex<HashMap<String, Arc<Reloading<ServerConfig>>>>,
    clients: Mutex<HashMap<String, Arc<Reloading<ClientConfig>>>>,
}

impl Security {
    /// Reads the policy and rate limits; with TLS on, certificates are read from the
    /// certificate directory as services ask for them.
    pub fn load(settings: &Settings) -> anyhow::Result<Arc<Self>> {
        let text = if settings.security.policy_file.is_empty() {
            DEFAULT_POLICY.to_owned()
        } else {
            std::fs::read_to_string(&settings.security.policy_file).with_context(|| {
                format!(
                    "security.policy_file: cannot read {}",
                    settings.security.policy_file
                )
            })?
        };
        let policy = policy_from(&text, &settings.security.allow_all)?;
        let default = Rate {
            per_second: settings.security.rate_per_second,
            burst: settings.security.burst,
        };
        let overrides = settings
            .security
            .caller_rates
            .iter()
            .map(|(caller, rate)| {
                (
                    caller.clone(),
                    Rate {
                        per_second: *rate,
                        burst: (rate * 2.0).max(1.0),
                    },
                )
            })
            .collect();
        let tls = settings.tls.enabled.then(|| TlsMaterial {
            dir: settings.tls.dir(&settings.data_dir),
            trust_domain: settings.tls.trust_domain.clone(),
            interval: settings.tls.reload_interval,
            stop: CancellationToken::new(),
            servers: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        });
        let plaintext = (!settings.tls.enabled).then(|| {
            Arc::new(Plaintext {
                header: SidecarHeader::parse(&settings.tls.sidecar_identity)
                    .unwrap_or(SidecarHeader::Any),
                trust_domain: settings.tls.trust_domain.clone(),
                fallback: Caller::from_name(&settings.tls.plaintext_caller),
            })
        });
        if let Some(p) = &plaintext
            && let Some(caller) = &p.fallback
        {
            tracing::warn!(%caller, "tls.plaintext_caller is set: loopback calls without a sidecar identity act as this caller (tests and development only)");
        }
        Ok(Arc::new(Self {
            tls,
            plaintext,
            policy: Arc::new(policy),
            limits: Arc::new(Limits::new(default, overrides)),
        }))
    }

    /// Whether connections use mutual TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// The trust domain (when TLS is on).
    pub fn trust_domain(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.trust_domain.as_str())
    }

    /// The certificate directory (when TLS is on).
    pub fn certificate_dir(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.dir.as_path())
    }

    /// The caller policy, enforced in both modes: with TLS on the certificate names the
    /// caller, in plaintext the sidecar's header does ([`Security::plaintext`]).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    /// What plaintext mode believes about callers (None with TLS on).
    pub fn plaintext(&self) -> Option<Arc<Plaintext>> {
        self.plaintext.clone()
    }

    /// The header a client of this process sends, in plaintext, to say it is `caller`
    /// (as a sidecar would; None with TLS on, where the certificate says it).
    pub fn identity_header(
        &self,
        caller: &Caller,
    ) -> Option<(http::HeaderName, http::HeaderValue)> {
        self.plaintext
            .as_ref()
            .map(|p| own_identity(caller, &p.trust_domain))
    }

    /// The rate limits.
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.clone()
    }

    fn files(tls: &TlsMaterial, identity: &Caller) -> TlsFiles {
        layout::files(&tls.dir, identity)
    }

    /// The server configuration of a service (None in plaintext mode).
    pub fn server_tls(
        &self,
        service: &str,
    ) -> anyhow::Result<Option<Arc<Reloading<ServerConfig>>>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let mut servers = tls.servers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = servers.get(service) {
            return Ok(Some(existing.clone()));
        }
        let files = Self::files(tls, &Caller::Service(service.to_owned()));
        let config = reloading(files.clone(), tls.interval, tls.stop.clone(), server_config)
            .with_context(|| {
                format!(
                    "{service}: loading its certificate (run `pdm certs init`?) from {}",
                    files.cert.display()
                )
            })?;
        servers.insert(service.to_owned(), config.clone());
        Ok(Some(config))
    }

    /// The client configuration of an identity (a service name, or `admin`).
    pub fn client_tls(
        &self,
        identity: &Caller,
    ) -> anyhow::Result<Option<Arc<Reloading<ClientConfig>>>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let name = identity.to_string();
        let mut clients = tls.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = clients.get(&name) {
            return Ok(Some(existing.clone()));
        }
        let files = Self::files(tls, identity);
        let config = reloading(files.clone(), tls.interval, tls.stop.clone(), client_config)
            .with_context(|| {
                format!(
                    "{name}: loading its certificate from {}",
                    files.cert.display()
                )
            })?;
        clients.insert(name, config.clone());
        Ok(Some(config))
    }

    /// Stops watching certificate files.
    pub fn shutdown(&self) {
        if let Some(tls) = &self.tls {
            tls.stop.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// Every method the mesh serves, as `/package.Service/Method`.
    fn served_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(pdm_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut methods = Vec::new();
        for file in set.file {
            let package = file.package().to_owned();
            for service in &file.service {
                for method in &service.method {
                    methods.push(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        methods
    }

    #[test]
    fn the_default_policy_names_only_real_methods_and_grants_every_method_to_someone() {
        let rules = parse_policy(DEFAULT_POLICY).expect("the built-in policy parses");
        let methods = served_methods();
        assert!(methods.len() > 50, "{methods:?}");
        for rule in &rules {
            for method in &rule.methods {
                let known = match method.strip_suffix("/*") {
                    Some(service) => methods
                        .iter()
                        .any(|m| m.starts_with(&format!("{service}/"))),
                    None => methods.contains(method),
                };
                assert!(known, "the policy names {method}, which nothing serves");
            }
        }
        let policy = policy_from(DEFAULT_POLICY, &[]).expect("the built-in policy is consistent");
        let everyone = [
            Caller::Admin,
            Caller::Client("any".to_owned()),
            Caller::Service("identity".to_owned()),
            Caller::Service("consent".to_owned()),
            Caller::Service("telemetry".to_owned()),
            Caller::Service("retention".to_owned()),
            Caller::Service("transfers".to_owned()),
            Caller::Service("rights".to_owned()),
            Caller::Service("incidents".to_owned()),
            Caller::Service("web".to_owned()),
        ];
        for method in &methods {
            assert!(
                everyone.iter().any(|caller| policy.allows(method, caller)),
                "nobody may call {method}"
            );
        }
    }

    #[test]
    fn every_data_category_names_served_methods_and_the_default_grants_clients_all() {
        let file = read_policy(DEFAULT_POLICY).expect("policy");
        let methods = served_methods();
        for category in &file.categories {
            for method in &category.methods {
                assert!(
                    methods.contains(method),
                    "category {} names {method}",
                    category.name
                );
            }
        }
        let policy = policy_from(DEFAULT_POLICY, &[]).expect("policy");
        let any = Caller::Client("any".to_owned());
        for category in &file.categories {
            for method in &category.methods {
                let rules_allow = Policy::new(&file.rules).allows(method, &any);
                assert_eq!(policy.allows(method, &any), rules_allow, "{method}");
            }
        }
    }

    #[test]
    fn a_client_granted_billing_gets_no_tickets() {
        let text = format!(
            "{DEFAULT_POLICY}\n[[grants]]\ncallers = [\"client:payments\"]\ncategories = [\"account\", \"credentials\", \"billing\"]\n"
        );
        let policy = policy_from(&text, &[]).expect("policy");
        let payments = Caller::Client("payments".to_owned());
        assert!(policy.allows(
            "/pdm.identity.v1.IdentityService/GetBillingContact",
            &payments
        ));
        assert!(!policy.allows(
            "/pdm.identity.v1.IdentityService/ListSupportTickets",
            &payments
        ));
        assert!(!policy.allows("/pdm.consent.v1.ConsentService/GrantConsent", &payments));
        assert!(policy.allows("/pdm.consent.v1.ConsentService/ListPurposes", &payments));
        let web = Caller::Client("web".to_owned());
        assert!(policy.allows("/pdm.identity.v1.IdentityService/ListSupportTickets", &web));
    }

    #[test]
    fn subject_data_is_least_privilege() {
        // Data Security & Protection: access restricted to authorised parties.
        let policy = Policy::new(&parse_policy(DEFAULT_POLICY).expect("policy"));
        let erase = "/pdm.subject.v1.SubjectDataService/EraseSubject";
        let purge = "/pdm.subject.v1.SubjectDataService/PurgeExpired";
        let rights = Caller::Service("rights".to_owned());
        let retention = Caller::Service("retention".to_owned());
        assert!(policy.allows(erase, &rights));
        assert!(policy.allows(purge, &retention));
        for caller in [
            Caller::Admin,
            Caller::Client("billing".to_owned()),
            Caller::Service("telemetry".to_owned()),
            retention.clone(),
        ] {
            assert!(!policy.allows(erase, &caller), "{caller} may erase");
        }
        assert!(!policy.allows(purge, &rights));
        let watch = "/pdm.consent.v1.ConsentService/WatchConsentChanges";
        assert!(policy.allows(watch, &Caller::Service("telemetry".to_owned())));
        // A company service's consent gate follows the ledger (scoped to its subjects).
        assert!(policy.allows(watch, &Caller::Client("billing".to_owned())));
        assert!(!policy.allows(watch, &Caller::Service("transfers".to_owned())));
    }
}
