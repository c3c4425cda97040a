//! Building a [`PdmClient`]: endpoints, certificates, timeouts; from the environment or
//! in code.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use pdm_tls::{
    config::{TlsFiles, client_config, reloading},
    connector::MtlsConnector,
    identity::Caller,
    layout,
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::{
    consent::ConsentClient, identity::IdentityClient, retry::RetryPolicy, rights::RightsClient,
    telemetry::TelemetryClient, transfers::TransfersClient,
};

/// The default deadline of a call (retries included).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often certificate files are looked at for a change.
const DEFAULT_RELOAD: Duration = Duration::from_secs(10);

/// What is wrong with a client's configuration: every problem, each with its key.
#[derive(Debug, thiserror::Error)]
#[error("pdm client configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    /// `KEY: what is wrong`, one per problem.
    pub problems: Vec<String>,
}

/// Builds a [`PdmClient`].
#[derive(Debug, Clone)]
pub struct Builder {
    endpoints: BTreeMap<String, String>,
    tls: Option<TlsFiles>,
    spiffe_id: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    reload_interval: Duration,
    retry: RetryPolicy,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            endpoints: BTreeMap::new(),
            tls: None,
            spiffe_id: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(3),
            reload_interval: DEFAULT_RELOAD,
            retry: RetryPolicy::default(),
        }
    }
}

impl Builder {
    /// Where a service answers, e.g. `("consent", "http://consent.pdm:50052")` (the
    /// scheme stays `http`: TLS comes from the certificates).
    pub fn endpoint(mut self, service: &str, url: impl Into<String>) -> Self {
        self.endpoints.insert(service.to_owned(), url.into());
        self
    }

    /// Mutual TLS with the certificates of company client `name` in `dir`, laid out as
    /// `pdm certs init` writes them (`ca.pem`, `client-<name>.pem`, `client-<name>.key`).
    pub fn client_certificates(mut self, dir: impl Into<PathBuf>, name: &str) -> Self {
        self.tls = Some(layout::files(&dir.into(), &Caller::Client(name.to_owned())));
        self
    }

    /// Mutual TLS with these files.
    pub fn certificates(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// The client's own SPIFFE id, `spiffe://<trust domain>/client/<name>`: `build`
    /// refuses certificates issued for another identity.
    pub fn spiffe_id(mut self, id: impl Into<String>) -> Self {
        self.spiffe_id = Some(id.into());
        self
    }

    /// The deadline of each call, retries included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the certificate files are checked for a change (default 10 s).
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// How calls are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Reads the configuration from the environment: `PDM_ENDPOINT_<SERVICE>` (e.g.
    /// `PDM_ENDPOINT_CONSENT`), `PDM_CERT_DIR` with `PDM_CLIENT_NAME` (or `PDM_CA_FILE`,
    /// `PDM_CERT_FILE` and `PDM_KEY_FILE`), `PDM_SPIFFE_ID` (the client's own identity;
    /// with `PDM_CERT_DIR` it also names the client when `PDM_CLIENT_NAME` is not given),
    /// `PDM_TIMEOUT_MS`. Without certificates the client speaks plaintext (a mesh behind
    /// a sidecar).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// [`Builder::from_env`] over any set of variables.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("PDM_"))
            .collect();
        let mut problems = Vec::new();
        let mut builder = Self::default();
        for (key, value) in &vars {
            if let Some(service) = key.strip_prefix("PDM_ENDPOINT_") {
                builder = builder.endpoint(&service.to_ascii_lowercase(), value.clone());
            }
        }
        if builder.endpoints.is_empty() {
            problems.push("PDM_ENDPOINT_<SERVICE>: no endpoint given".to_owned());
        }
        // The id names the client when PDM_CLIENT_NAME does not.
        let mut id_name = None;
        if let Some(id) = vars.get("PDM_SPIFFE_ID") {
            match client_of(id) {
                Some((_, name)) => id_name = Some(name),
                None => problems.push(not_a_client_id()),
            }
            builder = builder.spiffe_id(id.clone());
        }
        let name = vars.get("PDM_CLIENT_NAME").cloned().or(id_name);
        let files = ["PDM_CA_FILE", "PDM_CERT_FILE", "PDM_KEY_FILE"].map(|k| vars.get(k));
        match (vars.get("PDM_CERT_DIR"), name, files) {
            (Some(dir), Some(name), _) => builder = builder.client_certificates(dir, &name),
            // A bad PDM_SPIFFE_ID is already reported: it is what should have named it.
            (Some(_), None, _) if vars.contains_key("PDM_SPIFFE_ID") => {}
            (Some(_), None, _) => problems
                .push("PDM_CLIENT_NAME: required with PDM_CERT_DIR (or PDM_SPIFFE_ID)".to_owned()),
            (None, _, [Some(ca), Some(cert), Some(key)]) => {
                builder = builder.certificates(TlsFiles {
                    ca: ca.into(),
                    cert: cert.into(),
                    key: key.into(),
                });
            }
            (None, _, [None, None, None]) => {}
            (None, _, _) => problems.push(
                "PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE: give all three or none".to_owned(),
            ),
        }
        if let Some(raw) = vars.get("PDM_TIMEOUT_MS") {
            match raw.parse::<u64>() {
                Ok(ms) if (1..=600_000).contains(&ms) => {
                    builder = builder.timeout(Duration::from_millis(ms));
                }
                _ => problems
                    .push("PDM_TIMEOUT_MS: a whole number of milliseconds, 1 to 600000".to_owned()),
            }
        }
        if problems.is_empty() {
            Ok(builder)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Connects (lazily: a mesh that is down shows on the first call, as UNAVAILABLE).
    /// Must run inside a Tokio runtime (the certificate watcher is a task).
    pub fn build(self) -> Result<PdmClient, ConfigError> {
        let mut problems = Vec::new();
        if let Some(id) = &self.spiffe_id {
            match (client_of(id), &self.tls) {
                (None, _) => problems.push(not_a_client_id()),
                (Some((domain, _)), Some(files)) => {
                    if let Some(problem) = certificate_mismatch(files, id, &domain) {
                        problems.push(problem);
                    }
                }
                (Some(_), None) => {}
            }
        }
        let tls = match &self.tls {
            None => None,
            Some(files) => match reloading(
                files.clone(),
                self.reload_interval,
                CancellationToken::new(),
                client_config,
            ) {
                Ok(config) => Some(config),
                Err(e) => {
                    problems.push(format!("certificates: {e:#}"));
                    None
                }
            },
        };
        let mut channels = BTreeMap::new();
        for (service, url) in &self.endpoints {
            match Endpoint::from_shared(url.clone()) {
                Ok(endpoint) => {
                    let endpoint = endpoint
                        .connect_timeout(self.connect_timeout)
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(30))
                        .keep_alive_while_idle(true);
                    let channel = match &tls {
                        Some(config) => {
                            endpoint.connect_with_connector_lazy(MtlsConnector::new(config.clone()))
                        }
                        None => endpoint.connect_lazy(),
                    };
                    channels.insert(service.clone(), channel);
                }
                Err(e) => problems.push(format!("endpoint of {service}: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(PdmClient {
            inner: Arc::new(Inner {
                channels,
                timeout: self.timeout,
                retry: self.retry,
            }),
        })
    }
}

/// The trust domain and client name of a company client's SPIFFE id
/// (`spiffe://<domain>/client/<name>`), as the mesh parses the ids it authorises.
fn client_of(id: &str) -> Option<(String, String)> {
    let (domain, _) = id.strip_prefix("spiffe://")?.split_once('/')?;
    match Caller::from_spiffe_id(id, domain)? {
        Caller::Client(name) if !domain.is_empty() => Some((domain.to_owned(), name)),
        _ => None,
    }
}

fn not_a_client_id() -> String {
    "PDM_SPIFFE_ID: not of the form spiffe://<trust domain>/client/<name>".to_owned()
}

/// Why the leaf certificate of `files` is not `id`'s, if it is not. An unreadable file is
/// left to the TLS configuration, which reports it with its path.
fn certificate_mismatch(files: &TlsFiles, id: &str, domain: &str) -> Option<String> {
    let leaf = CertificateDer::pem_file_iter(&files.cert)
        .ok()?
        .next()?
        .ok()?;
    let found = match Caller::from_certificate(&leaf, domain) {
        Some(caller) => caller.spiffe_id(domain),
        None => format!("no SPIFFE id of {domain}"),
    };
    (found != id).then(|| format!("PDM_SPIFFE_ID: the certificate is for {found}, not {id}"))
}

/// The mesh as a company service sees it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PdmClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    channels: BTreeMap<String, Channel>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl PdmClient {
    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A client configured from the environment (see [`Builder::from_env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Builder::from_env()?.build()
    }

    /// The channel to `service`, for the generated clients of services without a facade
    /// here (`pdm_proto::<service>::v1::…Client::new(channel)`).
    pub fn channel(&self, service: &str) -> Result<Channel, ConfigError> {
        self.inner
            .channels
            .get(service)
            .cloned()
            .ok_or_else(|| ConfigError {
                problems: vec![format!(
                    "PDM_ENDPOINT_{}: not configured",
                    service.to_ascii_uppercase()
                )],
            })
    }

    /// The consent service.
    pub fn consent(&self) -> Result<ConsentClient, ConfigError> {
        Ok(ConsentClient::new(
            self.channel("consent")?,
            self.inner.timeout,
            self.inner.retry.clone(),
        ))
    }

    /// The identity service.
    pub fn identity(&self) -> Result<IdentityClient, ConfigError> {
        Ok(IdentityClient::new(
            self.channel("identity")?,
            self.inner.timeout,
            self.inner.retry.clone(),
        ))
    }

    /// The telemetry service.
    pub fn telemetry(&self) -> Result<TelemetryClient, ConfigError> {
        Ok(TelemetryClient::new(
            self.channel("telemetry")?,
            self.inner.timeout,
            self.inner.retry.clone(),
        ))
    }

    /// The transfers service.
    pub fn transfers(&self) -> Result<TransfersClient, ConfigError> {
        Ok(TransfersClient::new(
            self.channel("transfers")?,
            self.inner.timeout,
            self.inner.retry.clone(),
        ))
    }

    /// The rights service.
    pub fn rights(&self) -> Result<RightsClient, ConfigError> {
        Ok(RightsClient::new(
            self.channel("rights")?,
            self.inner.timeout,
            self.inner.retry.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_environment_names_endpoints_certificates_and_the_timeout() {
        let builder = Builder::from_vars(vars(&[
            ("PDM_ENDPOINT_CONSENT", "http://consent.pdm:50052"),
            ("PDM_CERT_DIR", "/certs"),
            ("PDM_CLIENT_NAME", "newsletter"),
            ("PDM_TIMEOUT_MS", "250"),
            ("HOME", "/root"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(builder.endpoints["consent"], "http://consent.pdm:50052");
        let tls = builder.tls.unwrap_or_else(|| panic!("no tls"));
        assert_eq!(tls.cert, PathBuf::from("/certs/client-newsletter.pem"));
        assert_eq!(builder.timeout, Duration::from_millis(250));
    }

    #[test]
    fn every_problem_of_the_environment_is_reported_with_its_key() {
        let err = Builder::from_vars(vars(&[
            ("PDM_CERT_DIR", "/certs"),
            ("PDM_TIMEOUT_MS", "soon"),
        ]))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        let keys: Vec<&str> = err
            .problems
            .iter()
            .filter_map(|p| p.split(':').next())
            .collect();
        assert_eq!(
            keys,
            [
                "PDM_ENDPOINT_<SERVICE>",
                "PDM_CLIENT_NAME",
                "PDM_TIMEOUT_MS"
            ]
        );
        let err = Builder::from_vars(vars(&[
            ("PDM_ENDPOINT_CONSENT", "http://c:1"),
            ("PDM_CA_FILE", "/ca.pem"),
        ]))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert!(err.problems[0].starts_with("PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE"));
    }

    #[test]
    fn a_spiffe_id_names_the_client_whose_certificates_are_read() {
        let builder = Builder::from_vars(vars(&[
            ("PDM_ENDPOINT_CONSENT", "http://consent.pdm:50052"),
            ("PDM_CERT_DIR", "/certs"),
            ("PDM_SPIFFE_ID", "spiffe://pdm.local/client/newsletter"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            builder.spiffe_id.as_deref(),
            Some("spiffe://pdm.local/client/newsletter")
        );
        let tls = builder.tls.unwrap_or_else(|| panic!("no tls"));
        assert_eq!(tls.cert, PathBuf::from("/certs/client-newsletter.pem"));
        assert_eq!(tls.key, PathBuf::from("/certs/client-newsletter.key"));

        // PDM_CLIENT_NAME, when given, names the files; the id is still the one checked.
        let builder = Builder::from_vars(vars(&[
            ("PDM_ENDPOINT_CONSENT", "http://consent.pdm:50052"),
            ("PDM_CERT_DIR", "/certs"),
            ("PDM_CLIENT_NAME", "billing"),
            ("PDM_SPIFFE_ID", "spiffe://pdm.local/client/newsletter"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let tls = builder.tls.unwrap_or_else(|| panic!("no tls"));
        assert_eq!(tls.cert, PathBuf::from("/certs/client-billing.pem"));
    }

    #[tokio::test]
    async fn an_id_that_is_not_a_company_clients_is_refused_with_its_key() {
        for id in [
            "spiffe://pdm.local/svc/consent",
            "spiffe://pdm.local/admin",
            "spiffe://pdm.local/client/",
            "spiffe://pdm.local/client/News Letter",
            "spiffe:///client/newsletter",
            "https://pdm.local/client/newsletter",
            "newsletter",
        ] {
            let err = Builder::from_vars(vars(&[
                ("PDM_ENDPOINT_CONSENT", "http://c:1"),
                ("PDM_CERT_DIR", "/certs"),
                ("PDM_SPIFFE_ID", id),
            ]))
            .err()
            .unwrap_or_else(|| panic!("{id} accepted"));
            assert_eq!(err.problems.len(), 1, "{id}: {err}");
            assert!(
                err.problems[0].starts_with("PDM_SPIFFE_ID: "),
                "{id}: {err}"
            );
        }
        // In code, the same id is refused when the client is built.
        let err = PdmClient::builder()
            .endpoint("consent", "http://c:1")
            .spiffe_id("spiffe://pdm.local/svc/consent")
            .build()
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(err.problems[0].starts_with("PDM_SPIFFE_ID: "), "{err}");
    }
}
