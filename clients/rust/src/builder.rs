//! Building a [`PdmClient`]: endpoints, certificates, timeouts; from the environment or
//! in code.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use pdm_tls::{
    config::{TlsFiles, client_config, reloading},
    connector::MtlsConnector,
    identity::Caller,
    layout,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::{consent::ConsentClient, retry::RetryPolicy};

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
    /// `PDM_CERT_FILE` and `PDM_KEY_FILE`), `PDM_TIMEOUT_MS`. Without certificates the
    /// client speaks plaintext (a mesh behind a sidecar).
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
        let files = ["PDM_CA_FILE", "PDM_CERT_FILE", "PDM_KEY_FILE"].map(|k| vars.get(k));
        match (vars.get("PDM_CERT_DIR"), vars.get("PDM_CLIENT_NAME"), files) {
            (Some(dir), Some(name), _) => builder = builder.client_certificates(dir, name),
            (Some(_), None, _) => {
                problems.push("PDM_CLIENT_NAME: required with PDM_CERT_DIR".to_owned())
            }
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
}
