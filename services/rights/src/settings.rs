//! The `[rights]` settings section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Rights-specific settings; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RightsSettings {
    /// Data-holding services (SubjectData), comma-separated; their endpoints come from
    /// `[services.<name>]`. Adding a service to the mesh means adding it here.
    pub services: String,
    /// Whether the retention service takes part (schedules in access packages, account
    /// closure recorded on erasure).
    pub retention: bool,
    /// Tasks run at once.
    pub parallelism: usize,
    /// Days an export package can be downloaded.
    pub package_days: i64,
    /// The mailbox file the default message sender appends to (sealed lines; read with
    /// `pdm rights mailbox`); empty: `<data_dir>/outbox/messages.jsonl`.
    pub outbox_file: String,
    /// SMTP relay `host:port`; when set, messages go by SMTP instead of the file.
    pub smtp_relay: String,
    /// Sender address for messages.
    pub mail_from: String,
    /// Longest wait between retries of a failing task (seconds).
    pub max_backoff_secs: i64,
}

impl Default for RightsSettings {
    fn default() -> Self {
        Self {
            services: "identity,consent,telemetry,transfers".to_owned(),
            retention: true,
            parallelism: 8,
            package_days: 30,
            outbox_file: String::new(),
            smtp_relay: String::new(),
            mail_from: "privacy@digitalapicraft.com".to_owned(),
            max_backoff_secs: 300,
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

    /// The data-holding services.
    pub fn data_services(&self) -> Vec<String> {
        self.services
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
