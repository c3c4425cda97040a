//! Per-subject data keys in a store apart from the data: a database (or SQLite file) of
//! its own, so a backup of a service's data holds ciphertext and no key that opens it.
//! Deleting a subject's key row here is the crypto-shredding step of an erasure.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use sea_orm_migration::MigratorTrait;

use crate::{CryptoError, DataKey, KekSet, KekVersion, Keyring, migration::KeyStoreMigrator};

/// The key store's `subject_keys` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One wrapped data key per subject (or per request, for the rights service).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "subject_keys")]
    pub struct Model {
        /// Subject id (the key's context).
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject_id: String,
        /// The KEK version the key is wrapped under.
        pub kek_version: i32,
        /// The data key, sealed under that version's wrapping key.
        pub wrapped_key: Vec<u8>,
        /// When the key was made.
        pub created_at: ChronoDateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The table as it was kept inside each data database before the key store existed
/// (adopted and dropped by [`KeyStore::adopt_legacy`]).
mod legacy {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "subject_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject_id: String,
        pub wrapped_key: Vec<u8>,
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
    /// A stored key could not be unwrapped (wrong or retired KEK, or tampering).
    #[error("key: {0}")]
    Crypto(#[from] CryptoError),
}

/// One stored key as a backup holds it: still wrapped, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Subject id (the key's context).
    pub subject_id: String,
    /// The KEK version it is wrapped under.
    pub kek_version: KekVersion,
    /// The wrapped key.
    pub wrapped_key: Vec<u8>,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
}

/// Reads, creates, rotates and destroys subjects' data keys in the key store.
#[derive(Debug, Clone)]
pub struct KeyStore {
    db: DatabaseConnection,
    keks: KekSet,
    keyring: Keyring,
    backups_kept: chrono::Duration,
}

/// Rows rewrapped per statement batch by [`KeyStore::rotate`].
const ROTATE_BATCH: u64 = 500;

impl KeyStore {
    /// Opens the key store on `db` (its own database), creating its table if needed.
    /// `keks` wraps the keys; `root` gives the blind indexes.
    pub async fn open(
        db: DatabaseConnection,
        keks: KekSet,
        root: &[u8; 32],
    ) -> Result<Self, DbErr> {
        KeyStoreMigrator::up(&db, None).await?;
        Ok(Self {
            db,
            keks,
            keyring: Keyring::new(root),
            backups_kept: chrono::Duration::zero(),
        })
    }

    /// The same store, whose backups are kept `days` days (`crypto.key_backup_days`).
    pub fn with_backups_kept(self, days: u32) -> Self {
        Self {
            backups_kept: chrono::Duration::days(i64::from(days)),
            ..self
        }
    }

    /// When the last backup of this store that can hold a key destroyed at `destroyed`
    /// is deleted: until then, restoring that backup could make the subject's data
    /// readable again.
    pub fn backups_gone_by(&self, destroyed: DateTime<Utc>) -> DateTime<Utc> {
        destroyed + self.backups_kept
    }

    /// The root keyring (for blind indexes and keys that live with their records).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The KEK versions this store wraps and unwraps with.
    pub fn keks(&self) -> &KekSet {
        &self.keks
    }

    /// The key store's own connection (tests and the command line).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The subject's key, if one exists.
    pub async fn find(&self, subject: &str) -> Result<Option<DataKey>, KeyStoreError> {
        match entity::Entity::find_by_id(subject.to_owned())
            .one(&self.db)
            .await?
        {
            Some(row) => Ok(Some(self.keks.unwrap_key(
                subject,
                version(row.kek_version)?,
                &row.wrapped_key,
            )?)),
            None => Ok(None),
        }
    }

    /// The subject's key, created if missing. Safe under concurrency: if two callers race,
    /// both end up with the key that was stored first.
    pub async fn find_or_create(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<DataKey, KeyStoreError> {
        if let Some(key) = self.find(subject).await? {
            return Ok(key);
        }
        self.create_or_find(subject, now).await
    }

    /// The key of a subject that most likely has none yet (an id just made): made and
    /// stored in one statement, without looking first; when one exists, that one.
    pub async fn create_or_find(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<DataKey, KeyStoreError> {
        let (key, version, wrapped) = self.keks.generate(subject)?;
        let inserted = entity::Entity::insert(entity::ActiveModel {
            subject_id: Set(subject.to_owned()),
            kek_version: Set(i32::try_from(version).unwrap_or(i32::MAX)),
            wrapped_key: Set(wrapped),
            created_at: Set(now),
        })
        .on_conflict_do_nothing_on([entity::Column::SubjectId])
        .exec_without_returning(&self.db)
        .await?;
        // Stored: the key just made is the subject's, no need to read it back. Not stored:
        // a racing caller stored its own first, and that one is the subject's.
        if matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
            return Ok(key);
        }
        self.find(subject)
            .await?
            .ok_or(KeyStoreError::Db(DbErr::RecordNotInserted))
    }

    /// The ids starting with `prefix` of keys made before `before` (for sweeping keys whose
    /// records are gone).
    pub async fn ids_made_before(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, DbErr> {
        entity::Entity::find()
            .select_only()
            .column(entity::Column::SubjectId)
            .filter(entity::Column::SubjectId.starts_with(prefix))
            .filter(entity::Column::CreatedAt.lt(before))
            .into_tuple()
            .all(&self.db)
            .await
    }

    /// Whether the subject has a key (without opening it).
    pub async fn exists(&self, subject: &str) -> Result<bool, DbErr> {
        Ok(entity::Entity::find_by_id(subject.to_owned())
            .count(&self.db)
            .await?
            > 0)
    }

    /// Destroys the subject's key; returns whether one existed.
    pub async fn destroy(&self, subject: &str) -> Result<bool, DbErr> {
        let result = entity::Entity::delete_by_id(subject.to_owned())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// How many keys each KEK version wraps, oldest version first.
    pub async fn versions_in_use(&self) -> Result<Vec<(KekVersion, u64)>, DbErr> {
        let rows: Vec<(i32, i64)> = entity::Entity::find()
            .select_only()
            .column(entity::Column::KekVersion)
            .column_as(entity::Column::SubjectId.count(), "n")
            .group_by(entity::Column::KekVersion)
            .order_by_asc(entity::Column::KekVersion)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(v, n)| (u32::try_from(v).unwrap_or(0), u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Versions that wrap stored keys but are not held here: those keys cannot be opened.
    pub async fn missing_versions(&self) -> Result<Vec<KekVersion>, DbErr> {
        Ok(self
            .versions_in_use()
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| !self.keks.has(*v))
            .collect())
    }

    /// Rewraps every key under the current KEK version; returns how many moved. The data
    /// keys stay the same, so no ciphertext changes. Each row is updated only if it still
    /// holds what was read, so a key destroyed meanwhile stays destroyed.
    pub async fn rotate(&self) -> Result<u64, KeyStoreError> {
        let current = i32::try_from(self.keks.current()).unwrap_or(i32::MAX);
        let mut moved = 0;
        loop {
            let rows = entity::Entity::find()
                .filter(entity::Column::KekVersion.ne(current))
                .order_by_asc(entity::Column::SubjectId)
                .limit(ROTATE_BATCH)
                .all(&self.db)
                .await?;
            if rows.is_empty() {
                return Ok(moved);
            }
            for row in rows {
                let rewrapped = self.keks.rewrap(
                    &row.subject_id,
                    version(row.kek_version)?,
                    &row.wrapped_key,
                )?;
                let done = entity::Entity::update_many()
                    .col_expr(entity::Column::KekVersion, current.into())
                    .col_expr(entity::Column::WrappedKey, rewrapped.into())
                    .filter(entity::Column::SubjectId.eq(row.subject_id.clone()))
                    .filter(entity::Column::KekVersion.eq(row.kek_version))
                    .exec(&self.db)
                    .await?;
                moved += done.rows_affected;
            }
        }
    }

    /// Every stored key, still wrapped (for a backup).
    pub async fn export(&self) -> Result<Vec<StoredKey>, DbErr> {
        let mut out = Vec::new();
        let mut pages = entity::Entity::find()
            .order_by_asc(entity::Column::SubjectId)
            .paginate(&self.db, 1000);
        while let Some(rows) = pages.fetch_and_next().await? {
            out.extend(rows.into_iter().map(|r| StoredKey {
                subject_id: r.subject_id,
                kek_version: u32::try_from(r.kek_version).unwrap_or(0),
                wrapped_key: r.wrapped_key,
                created_at: r.created_at,
            }));
        }
        Ok(out)
    }

    /// Stores keys from a backup, leaving any key already here as it is; returns how
    /// many were added.
    pub async fn import(&self, keys: &[StoredKey]) -> Result<u64, DbErr> {
        let mut added = 0;
        for key in keys {
            let done = entity::Entity::insert(entity::ActiveModel {
                subject_id: Set(key.subject_id.clone()),
                kek_version: Set(i32::try_from(key.kek_version).unwrap_or(i32::MAX)),
                wrapped_key: Set(key.wrapped_key.clone()),
                created_at: Set(key.created_at),
            })
            .on_conflict_do_nothing_on([entity::Column::SubjectId])
            .exec_without_returning(&self.db)
            .await?;
            if let sea_orm::TryInsertResult::Inserted(n) = done {
                added += n;
            }
        }
        Ok(added)
    }

    /// Moves keys still kept in a data database's `subject_keys` table (from before the
    /// key store) into the store, under KEK version 1, then drops that table, so the data
    /// database holds no key at all. Run at every start; idempotent, and safe to crash in
    /// (the copy ignores keys already moved; the table goes only after the copy).
    pub async fn adopt_legacy(&self, data: &DatabaseConnection) -> Result<u64, DbErr> {
        let manager = sea_orm_migration::SchemaManager::new(data);
        if !manager.has_table("subject_keys").await? {
            return Ok(0);
        }
        let rows = legacy::Entity::find().all(data).await?;
        let adopted = self
            .import(
                &rows
                    .into_iter()
                    .map(|r| StoredKey {
                        subject_id: r.subject_id,
                        kek_version: 1,
                        wrapped_key: r.wrapped_key,
                        created_at: r.created_at,
                    })
                    .collect::<Vec<_>>(),
            )
            .await?;
        data.execute_raw(Statement::from_string(
            data.get_database_backend(),
            "DROP TABLE subject_keys",
        ))
        .await?;
        Ok(adopted)
    }
}

fn version(stored: i32) -> Result<KekVersion, CryptoError> {
    KekVersion::try_from(stored).map_err(|_| CryptoError::UnknownKek(0))
}

#[cfg(test)]
mod tests {
    use sea_orm::Database;
    use sea_orm_migration::{MigrationTrait, SchemaManager};

    use super::*;
    use crate::migration::CreateSubjectKeys;

    async fn store(keks: KekSet) -> KeyStore {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        KeyStore::open(db, keks, &[3u8; 32]).await.expect("open")
    }

    #[tokio::test]
    async fn keys_are_created_once_reused_and_destroyed() {
        let store = store(KekSet::root_only(&[3u8; 32])).await;
        let now = Utc::now();

        assert!(store.find("s1").await.expect("find").is_none());
        let key = store.find_or_create("s1", now).await.expect("create");
        let sealed = key.seal_str("f", "secret").expect("seal");
        let again = store.find_or_create("s1", now).await.expect("reuse");
        assert_eq!(again.open_string("f", &sealed).as_deref(), Ok("secret"));

        assert!(store.destroy("s1").await.expect("destroy"));
        assert!(!store.destroy("s1").await.expect("destroy twice"));
        assert!(store.find("s1").await.expect("find").is_none());
        // A new key cannot open what the old one sealed: the data is shredded.
        let fresh = store.find_or_create("s1", now).await.expect("recreate");
        assert!(fresh.open("f", &sealed).is_err());
    }

    #[tokio::test]
    async fn a_key_made_by_a_racing_caller_is_the_one_both_get() {
        let store = store(KekSet::root_only(&[3u8; 32])).await;
        let now = Utc::now();
        let first = store.find_or_create("s1", now).await.expect("create");
        let sealed = first.seal_str("f", "secret").expect("seal");
        // The loser of a race found no key, then finds its insert refused.
        let loser = store.create_or_find("s1", now).await.expect("conflict");
        assert_eq!(loser.open_string("f", &sealed).as_deref(), Ok("secret"));
        let stored = store.find("s1").await.expect("find").expect("key");
        assert_eq!(stored.open_string("f", &sealed).as_deref(), Ok("secret"));
    }

    #[tokio::test]
    async fn rotation_rewraps_every_key_and_the_data_still_opens_after_retiring_the_old_kek() {
        let root = [3u8; 32];
        let old = store(KekSet::root_only(&root)).await;
        let now = Utc::now();
        let mut sealed = Vec::new();
        for i in 0..1200 {
            let key = old
                .find_or_create(&format!("s{i}"), now)
                .await
                .expect("key");
            sealed.push(key.seal_str("f", &format!("value {i}")).expect("seal"));
        }
        let backup = old.export().await.expect("export");
        assert_eq!(
            old.versions_in_use().await.expect("versions"),
            vec![(1, 1200)]
        );

        let rotated = KeyStore {
            keks: KekSet::new(&root, &[(2, [7; 32])], 0).expect("keks"),
            ..old.clone()
        };
        assert_eq!(rotated.rotate().await.expect("rotate"), 1200);
        assert_eq!(rotated.rotate().await.expect("again"), 0);
        assert_eq!(
            rotated.versions_in_use().await.expect("versions"),
            vec![(2, 1200)]
        );

        let retired = KeyStore {
            keks: KekSet::new(&root, &[(2, [7; 32])], 2).expect("keks"),
            ..old.clone()
        };
        assert!(
            retired
                .missing_versions()
                .await
                .expect("missing")
                .is_empty()
        );
        let key = retired.find("s7").await.expect("find").expect("kept");
        assert_eq!(key.open_string("f", &sealed[7]).as_deref(), Ok("value 7"));

        // A backup from before the rotation is wrapped under the retired version: restored
        // into a store of its own, none of it opens.
        let restored = store(retired.keks.clone()).await;
        assert_eq!(restored.import(&backup).await.expect("import"), 1200);
        assert_eq!(restored.missing_versions().await.expect("missing"), vec![1]);
        assert!(matches!(
            restored.find("s7").await,
            Err(KeyStoreError::Crypto(CryptoError::UnknownKek(1)))
        ));
    }

    #[tokio::test]
    async fn keys_left_in_a_data_database_are_adopted_and_their_table_dropped() {
        let data = Database::connect("sqlite::memory:").await.expect("sqlite");
        CreateSubjectKeys
            .up(&SchemaManager::new(&data))
            .await
            .expect("migrate");
        let ring = Keyring::new(&[3u8; 32]);
        let (key, wrapped) = ring.generate("old").expect("generate");
        let sealed = key.seal_str("f", "kept").expect("seal");
        legacy::Entity::insert(legacy::ActiveModel {
            subject_id: Set("old".to_owned()),
            wrapped_key: Set(wrapped),
            created_at: Set(Utc::now()),
        })
        .exec(&data)
        .await
        .expect("legacy row");

        let store = store(KekSet::root_only(&[3u8; 32])).await;
        assert_eq!(store.adopt_legacy(&data).await.expect("adopt"), 1);
        assert!(
            !SchemaManager::new(&data)
                .has_table("subject_keys")
                .await
                .expect("table")
        );
        assert_eq!(store.adopt_legacy(&data).await.expect("again"), 0);
        let key = store.find("old").await.expect("find").expect("adopted");
        assert_eq!(key.open_string("f", &sealed).as_deref(), Ok("kept"));
    }
}
