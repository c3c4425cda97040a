//! The `[rights]` settings section.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use pdm_runtime::settings::{Problems, SettingsError, SettingsSection, list, millis, secs};
use serde::Deserialize;

use crate::{
    domain::delivery::Retry,
    smtp::{self, Credentials, RelayConfig, TlsMode},
};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// Rights-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RightsSettings {
    /// Data-holding services (SubjectData), an array or comma-separated; their endpoints
    /// come from `[services.<name>]`. Adding a service to the mesh means adding it here.
    #[serde(with = "list")]
    pub services: Vec<String>,
    /// Whether the retention service takes part (schedules in access packages, account
    /// closure recorded on erasure).
    pub retention: bool,
    /// Tasks run at once (1 to 1024): each is a call to a service in flight. Measured on
    /// 2 cores (docs/scale.md), 32 completes a third more requests a second than 8 on
    /// SQLite and no fewer on PostgreSQL: a task mostly waits on a service.
    pub parallelism: usize,
    /// Days an export package can be downloaded.
    pub package_days: i64,
    /// The mailbox file the default message sender appends to (sealed lines; read with
    /// `pdm rights mailbox`); empty: `<data_dir>/outbox/messages.jsonl`.
    pub outbox_file: String,
    /// SMTP relay `host:port` (no port: 587 for `starttls`, 465 for `implicit`); when
    /// set, messages go by SMTP instead of the file.
    pub smtp_relay: String,
    /// `starttls` (the relay must offer STARTTLS, else nothing is sent), `implicit` (TLS
    /// from the first byte, port 465) or `none` (loopback relays only: a mail catcher in
    /// development, a relay in the same pod).
    pub smtp_tls: String,
    /// PEM file of the CAs that may sign the relay's certificate; empty: the Mozilla
    /// roots built into pdm.
    pub smtp_ca_file: String,
    /// User name for AUTH (PLAIN or LOGIN, over TLS only); empty: no authentication.
    pub smtp_username: String,
    /// File holding the SMTP password (a mounted Secret), read at each session; needed
    /// with `smtp_username`.
    pub smtp_password_file: String,
    /// Bound of connecting, the TLS handshake and each reply (`smtp_timeout_secs`).
    #[serde(rename = "smtp_timeout_secs", with = "secs")]
    pub smtp_timeout: Duration,
    /// Attempts at a message before it is marked FAILED (and its address forgotten).
    pub smtp_max_attempts: i32,
    /// Wait after a first failed attempt (`smtp_retry_secs`); doubled at each further
    /// failure.
    #[serde(rename = "smtp_retry_secs", with = "secs")]
    pub smtp_retry: Duration,
    /// Longest wait between attempts (`smtp_max_retry_secs`).
    #[serde(rename = "smtp_max_retry_secs", with = "secs")]
    pub smtp_max_retry: Duration,
    /// Sender address for messages.
    pub mail_from: String,
    /// Longest wait between retries of a failing task (`max_backoff_secs`).
    #[serde(rename = "max_backoff_secs", with = "secs")]
    pub max_backoff: Duration,
    /// How long a claimed task is a replica's without a renewal (`task_lease_ms`, 1 s to
    /// 10 minutes): a killed replica's tasks are taken over after it. Renewed every third.
    #[serde(rename = "task_lease_ms", with = "millis")]
    pub task_lease: Duration,
    /// Longest silence of a service's export stream before its task fails and is retried
    /// (`export_idle_ms`, 100 ms to 10 minutes): the lease is renewed while a task runs,
    /// so a peer that stops sending without ending its stream would hold it forever.
    #[serde(rename = "export_idle_ms", with = "millis")]
    pub export_idle: Duration,
}

impl Default for RightsSettings {
    fn default() -> Self {
        Self {
            services: ["identity", "consent", "telemetry", "transfers"]
                .map(str::to_owned)
                .to_vec(),
            retention: true,
            parallelism: 32,
            package_days: 30,
            outbox_file: String::new(),
            smtp_relay: String::new(),
            smtp_tls: "starttls".to_owned(),
            smtp_ca_file: String::new(),
            smtp_username: String::new(),
            smtp_password_file: String::new(),
            smtp_timeout: Duration::from_secs(30),
            smtp_max_attempts: Retry::default().max_attempts,
            smtp_retry: Retry::default().first.to_std().unwrap_or(MINUTE),
            smtp_max_retry: Retry::default().max.to_std().unwrap_or(MINUTE),
            mail_from: "privacy@digitalapicraft.com".to_owned(),
            max_backoff: Duration::from_secs(300),
            task_lease: Duration::from_secs(30),
            export_idle: MINUTE,
        }
    }
}

impl RightsSettings {
    /// The mailbox file: `outbox_file`, else `<data_dir>/outbox/messages.jsonl`.
    pub fn mailbox_file(&self, data_dir: &Path) -> PathBuf {
        if self.outbox_file.is_empty() {
            data_dir.join("outbox").join("messages.jsonl")
        } else {
            PathBuf::from(&self.outbox_file)
        }
    }

    /// The data-holding services (empty items skipped).
    pub fn data_services(&self) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect()
    }

    /// How delivery of messages is retried (checked by [`SettingsSection::check`]).
    pub fn retry(&self) -> Retry {
        let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let first = self.smtp_retry.max(SECOND);
        Retry {
            max_attempts: self.smtp_max_attempts.max(1),
            first: chrono(first),
            max: chrono(self.smtp_max_retry.max(first)),
        }
    }

    /// The SMTP relay the settings describe, `None` without `smtp_relay`, after checking
    /// every `smtp_*` key and `mail_from` (see [`SettingsSection::check`]), the password
    /// file and the CA file: a bad value stops the start with its key named.
    pub fn relay(&self) -> Result<Option<smtp::Relay>, SettingsError> {
        let mut problems = Problems::new();
        let config = self.relay_config(&mut problems);
        // Unreadable now is a mistake in the deployment: say so at start.
        let authenticates = !self.smtp_username.is_empty() && !self.smtp_password_file.is_empty();
        if !self.smtp_relay.trim().is_empty()
            && authenticates
            && let Err(e) = smtp::read_password(Path::new(&self.smtp_password_file))
        {
            problems.add("rights.smtp_password_file", e.detail);
        }
        let Some(config) = problems.into_result(config)? else {
            return Ok(None);
        };
        let key = if config.ca_file.is_some() {
            "rights.smtp_ca_file"
        } else {
            "rights.smtp_relay"
        };
        smtp::Relay::new(config)
            .map(Some)
            .map_err(|problem| SettingsError {
                problems: vec![(key.to_owned(), problem)],
            })
    }

    /// Checks every `smtp_*` key and `mail_from` (values only, no file is read), and
    /// describes the relay: `None` without `smtp_relay`, or when a problem was found.
    fn relay_config(&self, problems: &mut Problems) -> Option<RelayConfig> {
        let before = problems.clone();
        let mut bad = |key: &str, problem: String| problems.add(format!("rights.{key}"), problem);
        if !(1..=100).contains(&self.smtp_max_attempts) {
            bad("smtp_max_attempts", "1 to 100".into());
        }
        if !(SECOND..=DAY).contains(&self.smtp_retry) {
            bad("smtp_retry_secs", "1 to 86400".into());
        }
        if !(self.smtp_retry.max(SECOND)..=DAY).contains(&self.smtp_max_retry) {
            bad(
                "smtp_max_retry_secs",
                "at least rights.smtp_retry_secs, at most 86400".into(),
            );
        }
        if !(SECOND..=Duration::from_secs(600)).contains(&self.smtp_timeout) {
            bad("smtp_timeout_secs", "1 to 600".into());
        }
        if !smtp::message::valid_address(&self.mail_from) {
            bad("mail_from", "an email address".into());
        }
        let tls = TlsMode::parse(&self.smtp_tls);
        if tls.is_none() {
            bad(
                "smtp_tls",
                format!("{:?}: starttls, implicit or none", self.smtp_tls),
            );
        }
        if self.smtp_relay.trim().is_empty() {
            return None;
        }
        let tls = tls.unwrap_or(TlsMode::StartTls);
        let address = smtp::split_host_port(&self.smtp_relay, tls.default_port());
        if address.is_none() {
            bad(
                "smtp_relay",
                format!("{:?} is not host:port", self.smtp_relay),
            );
        }
        let loopback = address
            .as_ref()
            .is_some_and(|(host, _)| smtp::is_loopback_host(host));
        if tls == TlsMode::None && !loopback {
            bad(
                "smtp_tls",
                "none is only allowed for a loopback relay (localhost, 127.0.0.1, ::1): \
                 confirmations never cross a network in the clear"
                    .into(),
            );
        }
        let credentials = match (
            self.smtp_username.is_empty(),
            self.smtp_password_file.is_empty(),
        ) {
            (true, true) => None,
            (false, false) => Some(Credentials {
                username: self.smtp_username.clone(),
                password_file: PathBuf::from(&self.smtp_password_file),
            }),
            (false, true) => {
                bad(
                    "smtp_password_file",
                    "needed with rights.smtp_username".into(),
                );
                None
            }
            (true, false) => {
                bad(
                    "smtp_username",
                    "needed with rights.smtp_password_file".into(),
                );
                None
            }
        };
        if credentials.is_some() && tls == TlsMode::None {
            bad(
                "smtp_username",
                "authentication needs TLS (rights.smtp_tls = starttls or implicit)".into(),
            );
        }
        if tls == TlsMode::None && !self.smtp_ca_file.is_empty() {
            bad("smtp_ca_file", "set, but rights.smtp_tls is none".into());
        }
        let (host, port) = address?;
        if *problems != before {
            return None;
        }
        Some(RelayConfig {
            host,
            port,
            tls,
            ca_file: (!self.smtp_ca_file.is_empty()).then(|| PathBuf::from(&self.smtp_ca_file)),
            credentials,
            from: self.mail_from.clone(),
            helo: smtp::message::domain(&self.mail_from).to_owned(),
            timeout: self.smtp_timeout,
        })
    }
}

/// The most tasks a replica runs at once.
const MAX_PARALLELISM: usize = 1024;

impl SettingsSection for RightsSettings {
    const KEY: &'static str = crate::NAME;

    fn check(&self, problems: &mut Problems) {
        self.relay_config(problems);
        if !(SECOND..=10 * MINUTE).contains(&self.task_lease) {
            problems.add("rights.task_lease_ms", "1000 to 600000");
        }
        if !(Duration::from_millis(100)..=10 * MINUTE).contains(&self.export_idle) {
            problems.add("rights.export_idle_ms", "100 to 600000");
        }
        if !(SECOND..=DAY).contains(&self.max_backoff) {
            problems.add("rights.max_backoff_secs", "1 to 86400");
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            problems.add("rights.parallelism", "1 to 1024");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(keys: &[(&str, &str)]) -> RightsSettings {
        let pairs: Vec<(String, String)> = keys
            .iter()
            .map(|(k, v)| (format!("rights.{k}"), (*v).to_owned()))
            .collect();
        pdm_runtime::Settings::with_overrides(pairs)
            .expect("settings")
            .section(crate::NAME)
            .expect("rights section")
    }

    fn problems(s: &RightsSettings) -> Vec<String> {
        s.relay()
            .expect_err("refused")
            .problems
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn without_a_relay_the_file_is_used_and_smtp_defaults_to_starttls() {
        let s = with(&[]);
        assert!(s.relay().expect("valid").is_none());
        assert_eq!(s.smtp_tls, "starttls");
        assert_eq!(s.retry(), Retry::default());
    }

    #[test]
    fn the_task_backoff_is_a_duration_in_seconds_and_checked() {
        assert_eq!(with(&[]).max_backoff, Duration::from_secs(300));
        assert_eq!(
            with(&[("max_backoff_secs", "1")]).max_backoff,
            Duration::from_secs(1)
        );
        for bad in ["0", "86401"] {
            let mut problems = Problems::new();
            with(&[("max_backoff_secs", bad)]).check(&mut problems);
            let keys: Vec<String> = problems
                .into_result(())
                .expect_err("refused")
                .problems
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(keys, ["rights.max_backoff_secs"], "{bad}");
        }
    }

    #[test]
    fn parallelism_is_checked() {
        assert_eq!(with(&[]).parallelism, 32);
        let refused = |value: &str| {
            let mut problems = Problems::new();
            with(&[("parallelism", value)]).check(&mut problems);
            problems
                .into_result(())
                .err()
                .map(|e| e.problems.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        };
        assert_eq!(refused("1"), None);
        assert_eq!(refused("1024"), None);
        for bad in ["0", "1025"] {
            assert_eq!(
                refused(bad),
                Some(vec!["rights.parallelism".to_owned()]),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_relay_in_the_clear_must_be_on_loopback() {
        assert_eq!(
            problems(&with(&[
                ("smtp_relay", "smtp.example.com:25"),
                ("smtp_tls", "none")
            ])),
            ["rights.smtp_tls"]
        );
        for local in ["127.0.0.1:1025", "localhost:1025", "[::1]:1025"] {
            let s = with(&[("smtp_relay", local), ("smtp_tls", "none")]);
            assert!(s.relay().expect("valid").is_some(), "{local}");
        }
        assert_eq!(
            problems(&with(&[
                ("smtp_relay", "smtp.example.com"),
                ("smtp_tls", "tls")
            ])),
            ["rights.smtp_tls"]
        );
    }

    #[test]
    fn a_password_needs_a_user_a_readable_file_and_tls() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").expect("write");
        let file = file.display().to_string();
        let ok = with(&[
            ("smtp_relay", "smtp.example.com:587"),
            ("smtp_username", "pdm"),
            ("smtp_password_file", &file),
        ]);
        assert!(ok.relay().expect("valid").is_some());
        assert_eq!(
            problems(&with(&[
                ("smtp_relay", "smtp.example.com"),
                ("smtp_username", "pdm")
            ])),
            ["rights.smtp_password_file"]
        );
        assert_eq!(
            problems(&with(&[
                ("smtp_relay", "localhost:1025"),
                ("smtp_tls", "none"),
                ("smtp_username", "pdm"),
                ("smtp_password_file", &file),
            ])),
            ["rights.smtp_username"]
        );
        let missing = dir.path().join("absent").display().to_string();
        let s = with(&[
            ("smtp_relay", "smtp.example.com"),
            ("smtp_username", "pdm"),
            ("smtp_password_file", &missing),
        ]);
        assert_eq!(problems(&s), ["rights.smtp_password_file"]);
    }

    #[test]
    fn bad_values_are_all_named() {
        let s = with(&[
            ("smtp_relay", "smtp.example.com:notaport"),
            ("smtp_max_attempts", "0"),
            ("smtp_retry_secs", "10"),
            ("smtp_max_retry_secs", "5"),
            ("mail_from", "nobody"),
        ]);
        let mut got = problems(&s);
        got.sort();
        assert_eq!(
            got,
            [
                "rights.mail_from",
                "rights.smtp_max_attempts",
                "rights.smtp_max_retry_secs",
                "rights.smtp_relay",
            ]
        );
        let ca = with(&[
            ("smtp_relay", "smtp.example.com"),
            ("smtp_ca_file", "/nonexistent/ca.pem"),
        ]);
        assert_eq!(problems(&ca), ["rights.smtp_ca_file"]);
    }
}
