//! Per-subject data keys stored wrapped in the service's own database. Deleting a
//! subject's key row is the crypto-shredding step of an erasure.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::{CryptoError, DataKey, Keyring};

/// The `subject_keys` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One wrapped data key per subject.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "subject_keys")]
    pub struct Model {
        /// Subject id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject_id: String,
        /// The data key, sealed under the KEK-derived wrapping key.
        pub wrapped_key: Vec<u8>,
        /// When the key was made.
        pub created_at: ChronoDateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// A stored key could not be unwrapped (wrong KEK, or tampering).
    #[error("key: {0}")]
    Crypto(#[from] CryptoError),
}

/// Reads, creates and destroys subjects' data keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    keyring: Keyring,
}

impl KeyStore {
    /// A store that wraps keys with `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }

    /// The keyring (for blind indexes).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The subject's key, if one exists.
    pub async fn find<C: ConnectionTrait>(
        &self,
        db: &C,
        subject: &str,
    ) -> Result<Option<DataKey>, KeyStoreError> {
        match entity::Entity::find_by_id(subject.to_owned())
            .one(db)
            .await?
        {
            Some(row) => Ok(Some(self.keyring.unwrap_key(subject, &row.wrapped_key)?)),
            None => Ok(None),
        }
    }

    /// The subject's key, created if missing. Safe under concurrency: if two callers race,
    /// both end up with the key that was stored first.
    pub async fn find_or_create<C: ConnectionTrait>(
        &self,
        db: &C,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<DataKey, KeyStoreError> {
        if let Some(key) = self.find(db, subject).await? {
            return Ok(key);
        }
        let (_, wrapped) = self.keyring.generate(subject)?;
        entity::Entity::insert(entity::ActiveModel {
            subject_id: Set(subject.to_owned()),
            wrapped_key: Set(wrapped),
            created_at: Set(now),
        })
        .on_conflict_do_nothing_on([entity::Column::SubjectId])
        .exec(db)
        .await?;
        self.find(db, subject)
            .await?
            .ok_or(KeyStoreError::Db(DbErr::RecordNotInserted))
    }

    /// Destroys the subject's key; returns whether one existed.
    pub async fn destroy<C: ConnectionTrait>(&self, db: &C, subject: &str) -> Result<bool, DbErr> {
        let result = entity::Entity::delete_by_id(subject.to_owned())
            .exec(db)
            .await?;
        Ok(result.rows_affected > 0)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Database;
    use sea_orm_migration::MigrationTrait;
    use sea_orm_migration::SchemaManager;

    use super::*;
    use crate::migration::CreateSubjectKeys;

    #[tokio::test]
    async fn keys_are_created_once_reused_and_destroyed() {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        CreateSubjectKeys
            .up(&SchemaManager::new(&db))
            .await
            .expect("migrate");
        let store = KeyStore::new(Keyring::new(&[3u8; 32]));
        let now = Utc::now();

        assert!(store.find(&db, "s1").await.expect("find").is_none());
        let key = store.find_or_create(&db, "s1", now).await.expect("create");
        let sealed = key.seal_str("f", "secret").expect("seal");
        let again = store.find_or_create(&db, "s1", now).await.expect("reuse");
        assert_eq!(again.open_string("f", &sealed).as_deref(), Ok("secret"));

        assert!(store.destroy(&db, "s1").await.expect("destroy"));
        assert!(!store.destroy(&db, "s1").await.expect("destroy twice"));
        assert!(store.find(&db, "s1").await.expect("find").is_none());
        // A new key cannot open what the old one sealed: the data is shredded.
        let fresh = store
            .find_or_create(&db, "s1", now)
            .await
            .expect("recreate");
        assert!(fresh.open("f", &sealed).is_err());
    }
}
