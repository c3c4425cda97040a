//! Typed settings: built-in defaults, then an optional TOML file, then `PDM__…` environment
//! variables. Parsed once at start; every problem is reported together, naming its key.

use std::{
    any::Any,
    collections::BTreeMap,
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, de::DeserializeOwned};

/// The built-in defaults, documented key by key.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Settings shared by every service. Service-specific sections are [`SettingsSection`]s,
/// checked at start with [`Settings::check_section`] and read with [`Settings::checked`].
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where SQLite databases and generated development secrets live.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogSettings,
    /// Trace export.
    pub otlp: OtlpSettings,
    /// Prometheus `/metrics`.
    pub metrics: MetricsSettings,
    /// gRPC server behaviour common to every service.
    pub server: ServerSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Key-encryption key.
    pub crypto: CryptoSettings,
    /// Mutual TLS.
    pub tls: TlsSettings,
    /// Caller authorisation and rate limits.
    pub security: SecuritySettings,
    /// The access trail's witnessing.
    pub audit: AuditSettings,
    /// Per-service port, endpoint and database.
    pub services: BTreeMap<String, ServiceSettings>,
    #[serde(skip, default = "empty_config")]
    raw: Config,
    /// Service sections checked at start, by key.
    #[serde(skip)]
    sections: Sections,
}

fn empty_config() -> Config {
    Config::default()
}

/// How logs look and which are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// EnvFilter directives.
    pub filter: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable in a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Where spans go.
#[derive(Debug, Clone, Deserialize)]
pub struct OtlpSettings {
    /// OTLP/gRPC endpoint; empty falls back to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    /// `deployment.environment` resource attribute.
    pub environment: String,
}

/// Where Prometheus scrapes `/metrics`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// `ip:port` of the process's `/metrics` endpoint; empty: none.
    pub listen: String,
}

impl MetricsSettings {
    /// The address to serve `/metrics` on, if any.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.trim().parse().ok()
    }
}

/// Server behaviour common to every service.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address every service binds.
    pub host: String,
    /// Upper bound on a call's duration (`request_timeout_ms`).
    #[serde(rename = "request_timeout_ms", with = "millis")]
    pub request_timeout: Duration,
    /// Calls in flight per service.
    pub concurrency_limit: usize,
    /// Largest message, in bytes.
    pub max_message_bytes: usize,
    /// Drain time after a shutdown signal (`grace_period_ms`).
    #[serde(rename = "grace_period_ms", with = "millis")]
    pub grace_period: Duration,
    /// Interval of the database liveness check (`db_check_interval_ms`).
    #[serde(rename = "db_check_interval_ms", with = "millis")]
    pub db_check_interval: Duration,
}

impl ServerSettings {
    /// The per-call timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The drain time after a shutdown signal.
    pub fn grace_period(&self) -> Duration {
        self.grace_period
    }

    /// Interval of the database liveness check.
    pub fn db_check_interval(&self) -> Duration {
        self.db_check_interval
    }
}

/// Database connection settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Empty for SQLite files, or a PostgreSQL URL.
    pub url: String,
    /// Pool size per service.
    pub max_connections: u32,
    /// How long to wait for a connection (`connect_timeout_ms`).
    #[serde(rename = "connect_timeout_ms", with = "millis")]
    pub connect_timeout: Duration,
}

/// Where the keys come from, and where subjects' data keys are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct CryptoSettings {
    /// Root key, base64, 32 bytes: blind indexes, audit keys, and KEK version 1.
    pub kek: String,
    /// File holding the base64 root key.
    pub kek_file: String,
    /// Later KEK versions, `v<N>:<base64>` separated by commas (N ≥ 2); the highest wraps
    /// new keys.
    pub wrapping_keys: String,
    /// File holding `wrapping_keys` (one per line or comma-separated).
    pub wrapping_keys_file: String,
    /// KEK versions below this are not loaded (retired after `pdm keys rotate`).
    pub retire_kek_below: u32,
    /// The key store's PostgreSQL database (a schema `<service>_keys` per service). Empty:
    /// `<data_dir>/keys/<service>-keys.db` on SQLite, or a schema `<service>_keys` in
    /// the data database on PostgreSQL (with a warning: its backups then hold keys too).
    pub key_store_url: String,
    /// Where `pdm keys backup` writes; empty: `<data_dir>/keys/backups`.
    pub key_backup_dir: String,
    /// Days a key store backup is kept before `pdm keys backup` (or `purge-backups`)
    /// deletes it: the longest an erased subject's data can be restored from backups.
    pub key_backup_days: u32,
}

/// The range of `crypto.key_backup_days`.
pub const KEY_BACKUP_DAYS: std::ops::RangeInclusive<u32> = 1..=90;

/// Mutual TLS settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    /// mTLS on every connection.
    pub enabled: bool,
    /// Certificate directory; empty: `<data_dir>/certs`.
    pub dir: String,
    /// SPIFFE trust domain.
    pub trust_domain: String,
    /// How often certificate files are checked for changes (`reload_interval_ms`).
    #[serde(rename = "reload_interval_ms", with = "millis")]
    pub reload_interval: Duration,
    /// Kubernetes namespace for generated certificates' DNS names.
    pub namespace: String,
    /// Plaintext mode: the sidecar header that names the caller (`xfcc`, `l5d`, `any`).
    pub sidecar_identity: String,
    /// Plaintext mode: the caller assumed for loopback calls without that header (tests
    /// and development only).
    pub plaintext_caller: String,
}

/// Caller authorisation and rate limits.
#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    /// Sustained calls per second per caller.
    pub rate_per_second: f64,
    /// Burst per caller.
    pub burst: f64,
    /// Callers allowed every method (an array, or a comma-separated string).
    #[serde(with = "list")]
    pub allow_all: Vec<String>,
    /// A policy file replacing the built-in per-method policy (TOML, `[[rules]]`).
    #[serde(default)]
    pub policy_file: String,
    /// Per-caller rates, e.g. `telemetry = 10000.0`.
    #[serde(default)]
    pub caller_rates: BTreeMap<String, f64>,
}

/// How services witness each other's access trail heads.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// How often a service has its head witnessed (`witness_interval_ms`).
    #[serde(rename = "witness_interval_ms", with = "millis")]
    pub witness_interval: Duration,
    /// The ring (an array, or a comma-separated string); empty: every service of
    /// `[services]`, by name.
    #[serde(with = "list")]
    pub witness_ring: Vec<String>,
}

/// Bounds of `audit.witness_interval_ms`: at least 100 ms, at most a day.
const WITNESS_INTERVAL: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(86_400);

impl TlsSettings {
    /// The certificate directory.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        if self.dir.is_empty() {
            data_dir.join("certs")
        } else {
            PathBuf::from(&self.dir)
        }
    }
}

/// One service's port, endpoint and database.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Port the service listens on.
    pub port: u16,
    /// How other services reach it: one URL, or several separated by commas (its
    /// replicas, called round-robin among the serving ones); empty means
    /// `http://<server.host>:<port>`.
    pub endpoint: String,
    /// A database URL of its own; empty uses `[database]`.
    pub database_url: String,
    /// Plaintext health-only port (0: none).
    #[serde(default)]
    pub health_port: u16,
}

/// Settings that could not be loaded, every problem with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// `(key, problem)` pairs.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for (key, problem) in &self.problems {
            write!(f, "\n  {key}: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

impl SettingsError {
    fn one(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            problems: vec![(key.into(), problem.into())],
        }
    }

    fn from_config(err: config::ConfigError) -> Self {
        // config names the key in its message ("... for key `server.port`"); keep it whole.
        let (key, problem) = match &err {
            config::ConfigError::Type { key: Some(k), .. }
            | config::ConfigError::At { key: Some(k), .. } => {
                // The key leads the line: the message need not repeat it.
                let problem = err.to_string().replacen(&format!(" for key `{k}`"), "", 1);
                (dotted(k), problem)
            }
            config::ConfigError::NotFound(k) => (k.clone(), err.to_string()),
            _ => ("config".to_owned(), err.to_string()),
        };
        Self::one(key, problem)
    }
}

// === impl Problems ===

/// The problems found in the settings so far, each with its key: collected across every
/// section so that one start reports them all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    found: Vec<(String, String)>,
}

impl Problems {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with the value of `key` (the full key, e.g. `consent.tail_interval_ms`).
    pub fn add(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.found.push((key.into(), problem.into()));
    }

    /// Records `text` from a rule that names the key itself (`consent.purposes[2].key: …`):
    /// split at the first `: ` when what precedes it is a key under `section`, else
    /// recorded whole under `section`.
    pub fn add_named(&mut self, section: &str, text: &str) {
        match text.split_once(": ") {
            Some((key, problem))
                if key.starts_with(section) && !key.contains(char::is_whitespace) =>
            {
                self.add(key, problem);
            }
            _ => self.add(section, text),
        }
    }

    /// Records every problem of `err`.
    pub fn extend(&mut self, err: SettingsError) {
        self.found.extend(err.problems);
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `value` when nothing was found, else every problem.
    pub fn into_result<T>(self, value: T) -> Result<T, SettingsError> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(SettingsError {
                problems: self.found,
            })
        }
    }
}

/// A service's own section of the settings (`[consent]`, `[rights]`, …): parsed and checked
/// once at start, with every other section, whatever the services a process runs.
pub trait SettingsSection: DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// The section's key, e.g. `consent`.
    const KEY: &'static str;

    /// Adds a problem for each value out of range, naming its full key. Checks values
    /// only: files a section names are read when its service starts (another service's
    /// process may not mount them).
    fn check(&self, problems: &mut Problems);
}

/// Service sections checked at start, by key.
#[derive(Clone, Default)]
struct Sections(BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>);

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Where settings come from, beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct SettingsSource {
    /// A TOML file that must exist.
    pub file: Option<PathBuf>,
    /// Read `PDM__…` environment variables.
    pub env: bool,
    /// Explicit `key = value` overrides, applied last (tests, command-line flags).
    pub overrides: Vec<(String, String)>,
}

impl Settings {
    /// Loads settings for a process: `PDM_CONFIG` or `file`, else `./pdm.toml` if present,
    /// then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::from_source(Self::source(file))
    }

    /// `PDM_CONFIG` or `file`, else `./pdm.toml` if present, then the environment.
    fn source(file: Option<&Path>) -> SettingsSource {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PDM_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let local = PathBuf::from("pdm.toml");
                local.exists().then_some(local)
            });
        SettingsSource {
            file,
            env: true,
            overrides: Vec::new(),
        }
    }

    /// Settings from the defaults plus explicit overrides only (no file, no environment):
    /// what tests use.
    pub fn with_overrides<K: Into<String>, V: Into<String>>(
        overrides: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingsError> {
        Self::from_source(SettingsSource {
            file: None,
            env: false,
            overrides: overrides
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        })
    }

    /// [`Settings::load`], then `sections` checks the service sections: problems of the
    /// runtime's settings and of every section are reported together.
    pub fn load_with(
        file: Option<&Path>,
        sections: impl FnOnce(&mut Settings, &mut Problems),
    ) -> Result<Self, SettingsError> {
        Self::from_source_with(Self::source(file), sections)
    }

    /// Builds settings from a source description.
    pub fn from_source(source: SettingsSource) -> Result<Self, SettingsError> {
        Self::from_source_with(source, |_, _| {})
    }

    /// [`Settings::from_source`], then `sections` checks the service sections (see
    /// [`Settings::load_with`]).
    pub fn from_source_with(
        source: SettingsSource,
        sections: impl FnOnce(&mut Settings, &mut Problems),
    ) -> Result<Self, SettingsError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        if let Some(file) = &source.file {
            if !file.exists() {
                return Err(SettingsError::one(
                    "config file",
                    format!("{} does not exist", file.display()),
                ));
            }
            builder = builder.add_source(File::from(file.clone()).format(FileFormat::Toml));
        }
        if source.env {
            builder = builder.add_source(
                Environment::with_prefix("PDM")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
        }
        for (key, value) in &source.overrides {
            builder = builder
                .set_override(key.as_str(), value.as_str())
                .map_err(SettingsError::from_config)?;
        }
        let raw = builder.build().map_err(SettingsError::from_config)?;
        let (mut settings, found) = deserialize_all(&raw)?;
        let mut problems = Problems { found };
        if let Err(err) = settings.validate() {
            problems.extend(err);
        }
        settings.raw = raw;
        sections(&mut settings, &mut problems);
        problems.into_result(settings)
    }

    /// Reads a service-specific section (e.g. `identity`) into its own typed struct.
    /// Missing keys take the struct's serde defaults; every badly typed key is reported.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, SettingsError> {
        let mut problems = Problems::new();
        let section = self.parse_section(key, &mut problems);
        match section {
            Some(section) => problems.into_result(section),
            None => Err(SettingsError {
                problems: problems.found,
            }),
        }
    }

    /// Parses and checks section `T`, adding its problems, and keeps it for
    /// [`Settings::checked`]: what `pdm serve` does for every section before starting
    /// anything.
    pub fn check_section<T: SettingsSection>(&mut self, problems: &mut Problems) {
        if let Some(section) = self.parse_section::<T>(T::KEY, problems) {
            let before = problems.found.len();
            section.check(problems);
            if problems.found.len() == before {
                self.sections.0.insert(T::KEY, Arc::new(section));
            }
        }
    }

    /// Section `T` as checked at start; parsed and checked now when it was not (tests
    /// and tools that build their settings without [`Settings::check_section`]).
    pub fn checked<T: SettingsSection>(&self) -> Result<T, SettingsError> {
        if let Some(section) = self
            .sections
            .0
            .get(T::KEY)
            .and_then(|s| s.downcast_ref::<T>())
        {
            return Ok(section.clone());
        }
        let mut problems = Problems::new();
        let section = self.parse_section::<T>(T::KEY, &mut problems);
        if let Some(section) = &section {
            section.check(&mut problems);
        }
        match section {
            Some(section) => problems.into_result(section),
            None => Err(SettingsError {
                problems: problems.found,
            }),
        }
    }

    /// Deserialises the section at `key`, adding a problem for each badly typed value
    /// (each is replaced by its default to look for the next). `None` when a problem
    /// could not be set aside that way.
    fn parse_section<T: DeserializeOwned + Default>(
        &self,
        key: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        let mut value = match self.raw.get::<config::Value>(key) {
            Ok(value) => value,
            Err(config::ConfigError::NotFound(_)) => return Some(T::default()),
            Err(err) => {
                problems.extend(SettingsError::from_config(err));
                return None;
            }
        };
        let mut seen: Vec<String> = Vec::new();
        loop {
            let err = match value.clone().try_deserialize::<T>() {
                Ok(section) => return Some(section),
                Err(err) => SettingsError::from_config(err),
            };
            for (inner, problem) in err.problems {
                // Deserialising the section on its own names keys relative to it: put
                // the section's name back in front.
                let full = if inner == "config" || inner.is_empty() {
                    key.to_owned()
                } else {
                    format!("{key}.{inner}")
                };
                problems.add(full, problem);
                // Without the value, the key takes its default (sections are
                // `#[serde(default)]`); a key seen twice ends the search.
                if seen.contains(&inner) || !remove_path(&mut value, &inner) {
                    return None;
                }
                seen.push(inner);
            }
        }
    }

    /// The settings of one service.
    pub fn service(&self, name: &str) -> Result<&ServiceSettings, SettingsError> {
        self.services
            .get(name)
            .ok_or_else(|| SettingsError::one(format!("services.{name}"), "missing"))
    }

    /// The address a service listens on.
    pub fn listen_addr(&self, name: &str) -> Result<SocketAddr, SettingsError> {
        let host: IpAddr = self
            .server
            .host
            .parse()
            .map_err(|_| SettingsError::one("server.host", "not an IP address"))?;
        Ok(SocketAddr::new(host, self.service(name)?.port))
    }

    /// How other services reach a service.
    pub fn endpoint(&self, name: &str) -> Result<String, SettingsError> {
        let service = self.service(name)?;
        if service.endpoint.trim().is_empty() {
            let host = match self.server.host.as_str() {
                "0.0.0.0" => "127.0.0.1",
                "::" => "[::1]",
                other => other,
            };
            Ok(format!("http://{host}:{}", service.port))
        } else {
            Ok(service.endpoint.clone())
        }
    }

    /// The witnessing interval.
    pub fn witness_interval(&self) -> Duration {
        self.audit.witness_interval
    }

    /// The services that witness each other, in ring order: `audit.witness_ring`, or
    /// every service of `[services]` by name.
    pub fn witness_ring(&self) -> Vec<String> {
        let ring: Vec<String> = self
            .audit
            .witness_ring
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if ring.is_empty() {
            self.services.keys().cloned().collect()
        } else {
            ring
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        let mut bad =
            |key: &str, problem: &str| problems.push((key.to_owned(), problem.to_owned()));

        if self.server.host.parse::<IpAddr>().is_err() {
            bad("server.host", "not an IP address");
        }
        if !self.metrics.listen.trim().is_empty() && self.metrics.listen_addr().is_none() {
            bad(
                "metrics.listen",
                "must be empty (no /metrics) or an IP address and port, e.g. 0.0.0.0:9090",
            );
        }
        if self.server.request_timeout.is_zero() {
            bad("server.request_timeout_ms", "must be greater than 0");
        }
        if self.server.concurrency_limit == 0 {
            bad("server.concurrency_limit", "must be greater than 0");
        }
        if self.server.max_message_bytes < 1024 {
            bad("server.max_message_bytes", "must be at least 1024");
        }
        if self.tls.trust_domain.is_empty()
            || !self
                .tls
                .trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            bad("tls.trust_domain", "lowercase letters, digits, '.' and '-'");
        }
        if self.tls.reload_interval.is_zero() {
            bad("tls.reload_interval_ms", "must be greater than 0");
        }
        if pdm_tls::sidecar::SidecarHeader::parse(&self.tls.sidecar_identity).is_none() {
            bad("tls.sidecar_identity", "xfcc, l5d or any");
        }
        if !self.tls.plaintext_caller.is_empty()
            && pdm_tls::identity::Caller::from_name(&self.tls.plaintext_caller).is_none()
        {
            bad(
                "tls.plaintext_caller",
                "empty, admin, client:<name> or a service's name",
            );
        }
        // NaN fails both comparisons, so it is refused too.
        let rate_ok = self.security.rate_per_second > 0.0 && self.security.burst >= 1.0;
        if !rate_ok {
            bad(
                "security.rate_per_second",
                "rate must be positive and burst at least 1",
            );
        }
        if self.server.db_check_interval.is_zero() {
            bad("server.db_check_interval_ms", "must be greater than 0");
        }
        if self.database.max_connections == 0 {
            bad("database.max_connections", "must be greater than 0");
        }
        if !valid_database_url(&self.database.url) {
            bad("database.url", "must be empty, sqlite:… or postgres://…");
        }
        let mut ports = BTreeMap::new();
        for (name, service) in &self.services {
            if service.port == 0 {
                bad(&format!("services.{name}.port"), "must be greater than 0");
            } else if let Some(other) = ports.insert(service.port, name) {
                bad(
                    &format!("services.{name}.port"),
                    &format!("port {} is already used by {other}", service.port),
                );
            }
            if service.health_port != 0
                && let Some(other) = ports.insert(service.health_port, name)
            {
                bad(
                    &format!("services.{name}.health_port"),
                    &format!("port {} is already used by {other}", service.health_port),
                );
            }
            if !valid_database_url(&service.database_url) {
                bad(
                    &format!("services.{name}.database_url"),
                    "must be empty, sqlite:… or postgres://…",
                );
            }
            let addresses = crate::client::addresses(&service.endpoint);
            let endpoint_ok = service.endpoint.trim().is_empty()
                || (!addresses.is_empty()
                    && addresses.iter().all(|a| {
                        (a.starts_with("http://") || a.starts_with("https://"))
                            && a.parse::<http::Uri>().is_ok_and(|u| u.host().is_some())
                    }));
            if !endpoint_ok {
                bad(
                    &format!("services.{name}.endpoint"),
                    "must be one URL, or several separated by commas (one per replica), each starting with http:// or https://",
                );
            }
        }
        if !WITNESS_INTERVAL.contains(&self.audit.witness_interval) {
            bad(
                "audit.witness_interval_ms",
                "must be between 100 (0.1 s) and 86400000 (a day)",
            );
        }
        let ring = self.witness_ring();
        let mut in_ring = std::collections::BTreeSet::new();
        for name in &ring {
            if !self.services.contains_key(name) {
                bad(
                    "audit.witness_ring",
                    &format!("{name} is not a service of [services]"),
                );
            } else if !in_ring.insert(name) {
                bad("audit.witness_ring", &format!("{name} is named twice"));
            }
        }
        if !self.crypto.kek.is_empty() && crate::keys::decode_kek(&self.crypto.kek).is_err() {
            bad("crypto.kek", "must be 32 bytes, base64-encoded");
        }
        if let Err(e) = crate::keys::parse_wrapping_keys(&self.crypto.wrapping_keys) {
            bad("crypto.wrapping_keys", &e.to_string());
        }
        if !self.crypto.key_store_url.is_empty()
            && !self.crypto.key_store_url.starts_with("postgres")
        {
            bad("crypto.key_store_url", "must be empty or postgres://…");
        }
        if !KEY_BACKUP_DAYS.contains(&self.crypto.key_backup_days) {
            bad("crypto.key_backup_days", "must be between 1 and 90");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError { problems })
        }
    }
}

/// Deserialises `raw`, collecting every badly typed value instead of stopping at the
/// first: each one is reported, then replaced by its default to look for the next, so
/// one start reports every problem (the values checked by `validate` included).
fn deserialize_all(raw: &Config) -> Result<(Settings, Vec<(String, String)>), SettingsError> {
    let defaults = Config::builder()
        .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
        .build()
        .map_err(SettingsError::from_config)?;
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut patched = raw.clone();
    loop {
        let err = match patched.clone().try_deserialize::<Settings>() {
            Ok(settings) => return Ok((settings, problems)),
            Err(err) => SettingsError::from_config(err),
        };
        let Some(key) = err.problems.first().map(|(key, _)| key.clone()) else {
            return Err(err);
        };
        let seen = problems.iter().any(|(k, _)| *k == key);
        problems.extend(err.problems);
        // Only a value with a default can be replaced; anything else ends the search.
        let default = match defaults.get::<config::Value>(&key) {
            Ok(default) if !seen => default,
            _ => return Err(SettingsError { problems }),
        };
        patched = Config::builder()
            .add_source(patched)
            .set_override(&key, default)
            .and_then(|builder| builder.build())
            .map_err(SettingsError::from_config)?;
    }
}

/// `policies[0]years` (how config joins an index and a field) → `policies[0].years`.
fn dotted(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    let mut after_index = false;
    for c in key.chars() {
        if after_index && c != '.' && c != '[' {
            out.push('.');
        }
        after_index = c == ']';
        out.push(c);
    }
    out
}

/// Removes the value at `path` (`smtp_port`, `policies[1].years`) from `value`; false when
/// there is nothing there to remove.
fn remove_path(value: &mut config::Value, path: &str) -> bool {
    let mut segments: Vec<Segment<'_>> = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segments.push(Segment::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            let Ok(index) = index.parse() else {
                return false;
            };
            segments.push(Segment::Index(index));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut at = value;
    for segment in parents {
        let next = match (segment, &mut at.kind) {
            (Segment::Key(k), config::ValueKind::Table(table)) => table.get_mut(*k),
            (Segment::Index(i), config::ValueKind::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    match (last, &mut at.kind) {
        (Segment::Key(k), config::ValueKind::Table(table)) => table.remove(*k).is_some(),
        // An element cannot take a default: leave the array to the struct's default.
        _ => false,
    }
}

/// One step of a key path.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn valid_database_url(url: &str) -> bool {
    url.is_empty()
        || url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
}

// === serde helpers ===

/// `#[serde(with = "millis")]`: a [`Duration`] written as whole milliseconds (`*_ms` keys).
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads whole milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `#[serde(with = "secs")]`: a [`Duration`] written as whole seconds (`*_secs` keys).
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads whole seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// `#[serde(with = "minutes")]`: a [`Duration`] written as whole minutes (`*_minutes` keys).
pub mod minutes {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads whole minutes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(|m| Duration::from_secs(m.saturating_mul(60)))
    }
}

/// `#[serde(with = "list")]`: a list of names, written as a TOML array or as one
/// comma-separated string (what an environment variable such as
/// `PDM__AUDIT__WITNESS_RING=rights,identity` holds). Items are trimmed; an empty string
/// is an empty list; empty items are kept for the section's check to refuse or skip.
pub mod list {
    use std::fmt;

    use serde::{
        Deserializer,
        de::{SeqAccess, Visitor},
    };

    /// Reads an array of strings or a comma-separated string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(ListVisitor)
    }

    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings or a comma-separated string")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(split(s))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item.trim().to_owned());
            }
            Ok(items)
        }
    }

    /// `a, b` → `["a", "b"]`; `""` → `[]`.
    pub fn split(s: &str) -> Vec<String> {
        if s.trim().is_empty() {
            return Vec::new();
        }
        s.split(',').map(|item| item.trim().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_name_every_service() {
        let s = Settings::with_overrides::<&str, &str>([]).expect("defaults are valid");
        assert_eq!(s.service("identity").map(|s| s.port), Ok(50051));
        assert_eq!(s.service("rights").map(|s| s.port), Ok(50056));
        assert_eq!(
            s.endpoint("consent").as_deref(),
            Ok("http://127.0.0.1:50052")
        );
        assert_eq!(s.log.format, LogFormat::Auto);
    }

    #[test]
    fn an_endpoint_lists_one_replica_or_several() {
        let s = Settings::with_overrides([(
            "services.consent.endpoint",
            "http://consent-0.pdm:50052, http://consent-1.pdm:50052",
        )])
        .expect("two replicas");
        assert_eq!(
            s.endpoint("consent").as_deref(),
            Ok("http://consent-0.pdm:50052, http://consent-1.pdm:50052")
        );
        for bad in ["consent:50052", "http://a:1,consent:2", ",", "http://"] {
            let err =
                Settings::with_overrides([("services.consent.endpoint", bad)]).expect_err(bad);
            assert_eq!(
                err.problems[0].0, "services.consent.endpoint",
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Settings::with_overrides([("server.request_timeout_ms", "soon")])
            .expect_err("not a number");
        assert_eq!(err.problems[0].0, "server.request_timeout_ms", "{err}");
    }

    #[test]
    fn semantic_problems_are_reported_together() {
        let err = Settings::with_overrides([
            ("server.host", "not-an-ip"),
            ("services.consent.port", "50051"),
            ("database.url", "mysql://x"),
        ])
        .expect_err("three problems");
        let keys: Vec<_> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"server.host"), "{err}");
        assert!(keys.contains(&"database.url"), "{err}");
        assert!(
            keys.contains(&"services.identity.port") || keys.contains(&"services.consent.port"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_and_semantic_problems_are_reported_together() {
        let err = Settings::with_overrides([
            ("server.request_timeout_ms", "soon"),
            ("server.grace_period_ms", "later"),
            ("services.consent.port", "50051"),
        ])
        .expect_err("three problems");
        let keys: Vec<_> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"server.request_timeout_ms"), "{err}");
        assert!(keys.contains(&"server.grace_period_ms"), "{err}");
        assert!(
            keys.contains(&"services.identity.port") || keys.contains(&"services.consent.port"),
            "{err}"
        );
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_must_be_an_address() {
        let s = Settings::with_overrides::<&str, &str>([]).expect("defaults are valid");
        assert_eq!(s.metrics.listen_addr(), None);
        let s = Settings::with_overrides([("metrics.listen", "0.0.0.0:9090")]).expect("valid");
        assert_eq!(
            s.metrics.listen_addr(),
            Some(SocketAddr::from(([0, 0, 0, 0], 9090)))
        );
        for bad in ["9090", "localhost:9090", "0.0.0.0", "0.0.0.0:99999"] {
            let err = Settings::with_overrides([("metrics.listen", bad)]).expect_err(bad);
            assert_eq!(err.problems[0].0, "metrics.listen", "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = Settings::from_source(SettingsSource {
            file: Some(PathBuf::from("/nonexistent/pdm.toml")),
            ..SettingsSource::default()
        })
        .expect_err("missing file");
        assert_eq!(err.problems[0].0, "config file");
    }

    #[test]
    fn sections_fall_back_to_their_defaults() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct Mine {
            limit: u32,
        }
        let s = Settings::with_overrides([("mine.limit", "7")]).expect("valid");
        assert_eq!(s.section::<Mine>("mine"), Ok(Mine { limit: 7 }));
        assert_eq!(s.section::<Mine>("other"), Ok(Mine::default()));
        let s = Settings::with_overrides([("mine.limit", "many")]).expect("valid");
        let err = s.section::<Mine>("mine").expect_err("not a number");
        eprintln!("{err}");
        assert_eq!(err.problems[0].0, "mine.limit");
    }

    #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Alpha {
        #[serde(rename = "wait_ms", with = "millis")]
        wait: Duration,
        #[serde(with = "list")]
        names: Vec<String>,
        limit: u32,
    }

    impl SettingsSection for Alpha {
        const KEY: &'static str = "alpha";

        fn check(&self, problems: &mut Problems) {
            if self.limit > 10 {
                problems.add("alpha.limit", "at most 10");
            }
        }
    }

    #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Beta {
        #[serde(rename = "ttl_secs", with = "secs")]
        ttl: Duration,
        port: u16,
    }

    impl SettingsSection for Beta {
        const KEY: &'static str = "beta";

        fn check(&self, problems: &mut Problems) {
            if self.ttl.is_zero() {
                problems.add("beta.ttl_secs", "greater than 0");
            }
        }
    }

    fn both(settings: &mut Settings, problems: &mut Problems) {
        settings.check_section::<Alpha>(problems);
        settings.check_section::<Beta>(problems);
    }

    #[test]
    fn problems_of_every_section_are_reported_together() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("pdm.toml");
        std::fs::write(
            &file,
            "[server]\nhost = \"nowhere\"\n\
             [alpha]\nwait_ms = \"soon\"\nlimit = 11\nnames = 3\n\
             [beta]\nttl_secs = 0\nport = 70000\n",
        )
        .expect("write");
        let err = Settings::from_source_with(
            SettingsSource {
                file: Some(file),
                ..SettingsSource::default()
            },
            both,
        )
        .expect_err("six problems");
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "server.host",
            "alpha.wait_ms",
            "alpha.names",
            "alpha.limit",
            "beta.port",
            "beta.ttl_secs",
        ] {
            assert!(keys.contains(&key), "{key} missing from {err}");
        }
        assert_eq!(keys.len(), 6, "{err}");
    }

    #[test]
    fn checked_sections_are_kept_and_read_with_their_types() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("pdm.toml");
        std::fs::write(
            &file,
            "[alpha]\nwait_ms = 1500\nnames = [\" a \", \"b\"]\n[beta]\nttl_secs = 30\n",
        )
        .expect("write");
        let settings = Settings::from_source_with(
            SettingsSource {
                file: Some(file),
                ..SettingsSource::default()
            },
            both,
        )
        .expect("valid");
        let alpha = settings.checked::<Alpha>().expect("alpha");
        assert_eq!(alpha.wait, Duration::from_millis(1500));
        assert_eq!(alpha.names, ["a", "b"]);
        assert_eq!(
            settings.checked::<Beta>().map(|b| b.ttl),
            Ok(Duration::from_secs(30))
        );
        // The comma-separated form (what an environment variable holds) is a list too,
        // and a section nobody checked at start is checked when read.
        let settings = Settings::with_overrides([("alpha.names", "x, y"), ("alpha.wait_ms", "20")])
            .expect("valid");
        let alpha = settings.checked::<Alpha>().expect("alpha");
        assert_eq!(
            (alpha.names, alpha.wait),
            (
                vec!["x".to_owned(), "y".to_owned()],
                Duration::from_millis(20)
            )
        );
        let err = Settings::with_overrides([("alpha.limit", "11")])
            .expect("runtime settings are valid")
            .checked::<Alpha>()
            .expect_err("limit");
        assert_eq!(err.problems[0].0, "alpha.limit");
    }

    #[test]
    fn the_witness_ring_defaults_to_every_service_and_is_checked() {
        let settings = Settings::with_overrides(Vec::<(String, String)>::new()).expect("defaults");
        assert_eq!(
            settings.witness_ring(),
            [
                "consent",
                "identity",
                "incidents",
                "retention",
                "rights",
                "telemetry",
                "transfers"
            ]
        );
        assert_eq!(settings.witness_interval(), Duration::from_secs(60));
        let settings =
            Settings::with_overrides([("audit.witness_ring", " rights, identity ")]).expect("ring");
        assert_eq!(settings.witness_ring(), ["rights", "identity"]);
        let err = Settings::with_overrides([
            ("audit.witness_ring", "identity,nobody,identity"),
            ("audit.witness_interval_ms", "0"),
        ])
        .expect_err("bad");
        let keys: Vec<_> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "audit.witness_interval_ms",
                "audit.witness_ring",
                "audit.witness_ring"
            ],
            "{err}"
        );
    }

    #[test]
    fn allow_all_is_a_toml_array_or_the_comma_separated_form_of_the_environment() {
        let defaults = Settings::with_overrides(Vec::<(String, String)>::new()).expect("defaults");
        assert!(defaults.security.allow_all.is_empty());
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("pdm.toml");
        std::fs::write(
            &file,
            "[security]\nallow_all = [\"client:testkit\", \" identity \"]\n",
        )
        .expect("write");
        let array = Settings::from_source(SettingsSource {
            file: Some(file),
            ..SettingsSource::default()
        })
        .expect("an array");
        assert_eq!(array.security.allow_all, ["client:testkit", "identity"]);
        // What PDM__SECURITY__ALLOW_ALL holds.
        let string = Settings::with_overrides([("security.allow_all", "client:testkit, identity")])
            .expect("a comma-separated string");
        assert_eq!(string.security.allow_all, ["client:testkit", "identity"]);
    }
}
