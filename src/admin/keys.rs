//! `pdm keys`: the key stores that hold subjects' data keys apart from the data. Works on
//! the stores directly (like a migration tool), so it runs beside the services or while
//! they are down.
//!
//! A backup is one JSON file per service, `keys-<service>-<UTC time>.json` (mode 0600),
//! holding the keys still wrapped under their KEK version: useless without the KEK, and
//! deleted after `crypto.key_backup_days` by every `pdm keys backup` (or `purge-backups`).
//! That period is how long an erased subject's data can come back from a restore.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, NaiveDateTime, Utc};
use clap::Subcommand;
use pdm_crypto::{KeyStore, key_store::StoredKey};
use pdm_runtime::Settings;
use serde::{Deserialize, Serialize};

use crate::admin::print_table;

/// The services that keep subjects' data keys.
pub const KEY_STORES: [&str; 3] = ["identity", "telemetry", "rights"];

const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Key store commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Per service: where its key store is, the KEK versions configured and how many keys
    /// each version wraps.
    Status,
    /// Rewrap every key under the newest KEK version (`crypto.wrapping_keys`). The data
    /// keys stay the same, so no data is rewritten; afterwards retire the old versions
    /// (`crypto.retire_kek_below`) and every older key store backup opens nothing.
    Rotate,
    /// Write a backup of every key store into `crypto.key_backup_dir`, then delete the
    /// backups older than `crypto.key_backup_days`.
    Backup,
    /// Delete the key store backups older than `crypto.key_backup_days`.
    PurgeBackups,
    /// Put the keys of a backup file back into its service's key store (keys already
    /// there stay). Subjects erased after the backup was taken get their keys back:
    /// run their erasures again afterwards (their receipts list them).
    Restore {
        /// The backup file (`keys-<service>-<time>.json`).
        #[arg(long)]
        file: PathBuf,
    },
}

/// A backup file.
#[derive(Debug, Serialize, Deserialize)]
struct Backup {
    service: String,
    taken_at: DateTime<Utc>,
    keys: Vec<BackupKey>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BackupKey {
    subject_id: String,
    kek_version: u32,
    wrapped_key: String,
    created_at: DateTime<Utc>,
}

/// Runs a `pdm keys` command.
pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let (root, _) = pdm_runtime::keys::load_kek(settings)?;
    match command {
        KeysCommand::Status => {
            let mut rows = Vec::new();
            for service in KEY_STORES {
                let store = open(settings, service, &root).await?;
                let target = pdm_runtime::key_store::resolve(settings, service)?;
                let in_use = store.versions_in_use().await?;
                let missing = store.missing_versions().await?;
                rows.push(vec![
                    service.to_owned(),
                    target.target.describe(),
                    store.keks().current().to_string(),
                    list(store.keks().versions()),
                    in_use
                        .iter()
                        .map(|(v, n)| format!("v{v}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if missing.is_empty() {
                        "-".to_owned()
                    } else {
                        list(missing)
                    },
                ]);
            }
            print_table(
                &[
                    "SERVICE",
                    "KEY STORE",
                    "CURRENT",
                    "CONFIGURED",
                    "KEYS",
                    "MISSING",
                ],
                &rows,
            );
            Ok(())
        }
        KeysCommand::Rotate => {
            for service in KEY_STORES {
                let store = open(settings, service, &root).await?;
                let moved = store
                    .rotate()
                    .await
                    .with_context(|| format!("rotating the key store of {service}"))?;
                println!(
                    "{service}: {moved} key(s) rewrapped under KEK version {}",
                    store.keks().current()
                );
            }
            let current = pdm_runtime::keys::load_kek_set(settings, &root)?.current();
            if current > 1 {
                println!(
                    "every key is now under version {current}: retire the older ones with \
                     crypto.retire_kek_below = {current} (and drop them from crypto.wrapping_keys)"
                );
            }
            Ok(())
        }
        KeysCommand::Backup => {
            let dir = backup_dir(settings)?;
            let now = Utc::now();
            for service in KEY_STORES {
                let store = open(settings, service, &root).await?;
                let path = write_backup(&dir, service, &store, now).await?;
                println!("{service}: wrote {}", path.display());
            }
            purge(settings, &dir, now)
        }
        KeysCommand::PurgeBackups => purge(settings, &backup_dir(settings)?, Utc::now()),
        KeysCommand::Restore { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let backup: Backup = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a key store backup", file.display()))?;
            anyhow::ensure!(
                KEY_STORES.contains(&backup.service.as_str()),
                "{} is a backup of {:?}, which keeps no key store",
                file.display(),
                backup.service
            );
            let keys = backup
                .keys
                .into_iter()
                .map(|k| {
                    Ok(StoredKey {
                        subject_id: k.subject_id,
                        kek_version: k.kek_version,
                        wrapped_key: STANDARD
                            .decode(k.wrapped_key)
                            .context("a wrapped key is not base64")?,
                        created_at: k.created_at,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = open(settings, &backup.service, &root).await?;
            let added = store.import(&keys).await?;
            println!(
                "{}: {added} of {} key(s) restored from the backup of {}",
                backup.service,
                keys.len(),
                backup.taken_at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            let missing = store.missing_versions().await?;
            if !missing.is_empty() {
                println!(
                    "warning: keys under KEK version(s) {} cannot be opened with this configuration",
                    list(missing)
                );
            }
            Ok(())
        }
    }
}

async fn open(settings: &Settings, service: &str, root: &[u8; 32]) -> anyhow::Result<KeyStore> {
    pdm_runtime::key_store::connect(settings, service, root)
        .await
        .with_context(|| format!("the key store of {service}"))
}

fn list(versions: Vec<u32>) -> String {
    versions
        .iter()
        .map(|v| format!("v{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn backup_dir(settings: &Settings) -> anyhow::Result<PathBuf> {
    let dir = if settings.crypto.key_backup_dir.is_empty() {
        settings.data_dir.join("keys").join("backups")
    } else {
        PathBuf::from(&settings.crypto.key_backup_dir)
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn write_backup(
    dir: &Path,
    service: &str,
    store: &KeyStore,
    now: DateTime<Utc>,
) -> anyhow::Result<PathBuf> {
    let keys = store.export().await?;
    let backup = Backup {
        service: service.to_owned(),
        taken_at: now,
        keys: keys
            .into_iter()
            .map(|k| BackupKey {
                subject_id: k.subject_id,
                kek_version: k.kek_version,
                wrapped_key: STANDARD.encode(&k.wrapped_key),
                created_at: k.created_at,
            })
            .collect(),
    };
    let path = dir.join(format!("keys-{service}-{}.json", now.format(TIME_FORMAT)));
    // Owner-only, like every secret pdm writes; the keys in it are still wrapped.
    pdm_tls::layout::write_private(&path, &serde_json::to_string(&backup)?, true)?;
    Ok(path)
}

/// When a backup file was taken, from its name.
fn taken_at(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_prefix("keys-")?.strip_suffix(".json")?;
    let (_, time) = stem.rsplit_once('-')?;
    NaiveDateTime::parse_from_str(time, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Deletes the backups taken more than `crypto.key_backup_days` before `now`.
fn purge(settings: &Settings, dir: &Path, now: DateTime<Utc>) -> anyhow::Result<()> {
    let cutoff = now - chrono::Duration::days(i64::from(settings.crypto.key_backup_days));
    let mut purged = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if taken_at(&name).is_some_and(|t| t < cutoff) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("deleting {}", entry.path().display()))?;
            println!(
                "deleted {name} (older than {} days)",
                settings.crypto.key_backup_days
            );
            purged += 1;
        }
    }
    println!(
        "{purged} backup(s) deleted; backups are kept {} days (crypto.key_backup_days)",
        settings.crypto.key_backup_days
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_dated_by_its_name() {
        assert_eq!(
            taken_at("keys-identity-20261204T101500Z.json"),
            DateTime::parse_from_rfc3339("2026-12-04T10:15:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        assert_eq!(taken_at("keys-identity.json"), None);
        assert_eq!(taken_at("identity.db"), None);
    }
}
