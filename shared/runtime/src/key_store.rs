//! Where each service keeps its subjects' data keys: a key store apart from its data.
//!
//! On SQLite the store is a file of its own, `<data_dir>/keys/<service>-keys.db`; on
//! PostgreSQL it is a schema `<service>_keys` in the database `crypto.key_store_url`
//! names. Without that URL the schema goes into the data database, which works but puts
//! keys and data in the same backup: the service warns at start.

use anyhow::Context as _;
use pdm_crypto::KeyStore;
use sea_orm::DatabaseConnection;

use crate::{
    db::{self, DatabaseTarget},
    keys::{KEK_LEN, load_kek_set},
    settings::Settings,
};

/// Where a service's key store lives, and whether it shares the data's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreTarget {
    /// The database.
    pub target: DatabaseTarget,
    /// True when the store is a schema inside the data database (no `key_store_url` on
    /// PostgreSQL): a backup of the data then holds the keys too.
    pub beside_data: bool,
}

/// The key store of `service` under `settings`.
pub fn resolve(settings: &Settings, service: &str) -> anyhow::Result<KeyStoreTarget> {
    let schema = Some(format!("{service}_keys"));
    if !settings.crypto.key_store_url.is_empty() {
        return Ok(KeyStoreTarget {
            target: DatabaseTarget::Postgres {
                url: settings.crypto.key_store_url.clone(),
                schema,
            },
            beside_data: false,
        });
    }
    match DatabaseTarget::resolve(settings, service)? {
        DatabaseTarget::Postgres { url, .. } => Ok(KeyStoreTarget {
            target: DatabaseTarget::Postgres { url, schema },
            beside_data: true,
        }),
        DatabaseTarget::Sqlite { .. } => {
            let dir = settings.data_dir.join("keys");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating key store directory {}", dir.display()))?;
            restrict(&dir);
            Ok(KeyStoreTarget {
                target: DatabaseTarget::Sqlite {
                    url: format!(
                        "sqlite://{}?mode=rwc",
                        dir.join(format!("{service}-keys.db")).display()
                    ),
                },
                beside_data: false,
            })
        }
    }
}

/// Opens (creating if needed) the key store of `service` without touching its data: for
/// the command line (`pdm keys`).
pub async fn connect(
    settings: &Settings,
    service: &str,
    root: &[u8; KEK_LEN],
) -> anyhow::Result<KeyStore> {
    let target = resolve(settings, service)?;
    let db = db::connect(settings, &target.target)
        .await
        .context("connecting to the key store")?;
    let keks = load_kek_set(settings, root)?;
    Ok(KeyStore::open(db, keks, root)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "key store migrations failed: {}",
                crate::error::db_error_kind(&e)
            )
        })?
        .with_backups_kept(settings.crypto.key_backup_days))
}

/// Opens the key store of `service` at its start: moves any key still kept in the data
/// database `data` into the store, and refuses to start when the store holds keys under
/// a KEK version the configuration lacks (their subjects' data could not be read).
pub async fn open(
    settings: &Settings,
    service: &str,
    root: &[u8; KEK_LEN],
    data: &DatabaseConnection,
) -> anyhow::Result<KeyStore> {
    let target = resolve(settings, service)?;
    if target.beside_data {
        tracing::warn!(
            service,
            "the key store is a schema of the data database: a backup of that database \
             holds keys and data together, so erased subjects can be restored from it; \
             set crypto.key_store_url to a database of its own"
        );
    }
    let store = connect(settings, service, root).await?;
    let adopted = store.adopt_legacy(data).await.map_err(|e| {
        anyhow::anyhow!(
            "moving keys into the key store: {}",
            crate::error::db_error_kind(&e)
        )
    })?;
    if adopted > 0 {
        tracing::info!(
            service,
            adopted,
            "moved subject keys from the data database into the key store"
        );
    }
    let missing = store.missing_versions().await.map_err(|e| {
        anyhow::anyhow!("reading the key store: {}", crate::error::db_error_kind(&e))
    })?;
    anyhow::ensure!(
        missing.is_empty(),
        "the key store of {service} holds keys wrapped under KEK version(s) {missing:?}, which \
         this configuration does not have (crypto.wrapping_keys, crypto.retire_kek_below): \
         restore that version, or run `pdm keys rotate` with it before retiring it"
    );
    tracing::info!(
        service,
        key_store = %target.target.describe(),
        kek_version = store.keks().current(),
        "key store ready"
    );
    Ok(store)
}

#[cfg(unix)]
fn restrict(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: only the service's user reads the keys directory.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_dir: &std::path::Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_sqlite_the_keys_are_a_file_of_their_own_named_for_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings::with_overrides([("data_dir", dir.path().display().to_string())])
            .expect("settings");
        let store = resolve(&settings, "identity").expect("target");
        assert!(!store.beside_data);
        let DatabaseTarget::Sqlite { url } = store.target else {
            panic!("sqlite expected");
        };
        assert!(url.ends_with("/keys/identity-keys.db?mode=rwc"), "{url}");
        let data = DatabaseTarget::resolve(&settings, "identity").expect("data");
        assert_ne!(data, DatabaseTarget::Sqlite { url });
    }

    #[test]
    fn on_postgres_the_keys_go_to_their_own_database_or_warn_beside_the_data() {
        let beside =
            Settings::with_overrides([("database.url", "postgres://db/pdm")]).expect("settings");
        let target = resolve(&beside, "telemetry").expect("target");
        assert!(target.beside_data);
        assert_eq!(
            target.target,
            DatabaseTarget::Postgres {
                url: "postgres://db/pdm".to_owned(),
                schema: Some("telemetry_keys".to_owned())
            }
        );
        let apart = Settings::with_overrides([
            ("database.url", "postgres://db/pdm"),
            ("crypto.key_store_url", "postgres://keys/pdm_keys"),
        ])
        .expect("settings");
        let target = resolve(&apart, "telemetry").expect("target");
        assert!(!target.beside_data);
        assert_eq!(
            target.target,
            DatabaseTarget::Postgres {
                url: "postgres://keys/pdm_keys".to_owned(),
                schema: Some("telemetry_keys".to_owned())
            }
        );
    }
}
