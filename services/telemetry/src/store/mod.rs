//! Persistence. Events are written in bulk: on PostgreSQL with COPY into day partitions, on
//! SQLite with multi-row inserts; the batch record, the events and the aggregate counts
//! commit together, so an acknowledged batch is durable and a retried one is stored once.

mod aggregates;
mod binary_copy;
pub mod entities;
mod events;
mod subjects;
mod tracking;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, NaiveDate, Utc};
use pdm_crypto::KeyStore;
use sea_orm::{DatabaseBackend, DatabaseConnection};

pub use aggregates::{BucketDelta, BucketKey, Deltas};
pub use events::{EventRow, StoredEvent};
pub use subjects::Erased;
pub use tracking::{MAX_CHOICES_PER_DEVICE, NewChoice};

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}

/// The telemetry database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    keys: KeyStore,
    /// Day partitions known to exist (PostgreSQL).
    partitions: Arc<Mutex<HashSet<NaiveDate>>>,
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection, keys: KeyStore) -> Self {
        Self {
            db,
            keys,
            partitions: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The key store.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The erasure receipts (`erasures`).
    pub fn receipts(&self) -> pdm_runtime::erasure::Receipts {
        pdm_runtime::erasure::Receipts::new(self.db.clone())
    }

    fn postgres(&self) -> bool {
        self.db.get_database_backend() == DatabaseBackend::Postgres
    }

    /// The keyed hash that stands for a subject id where the id itself must not stay
    /// (suppression list, interaction peers).
    pub fn subject_hash(&self, subject: &str) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute("telemetry-subject", subject)
    }

    /// The keyed hash of a device identifier.
    pub fn device_hash(&self, device: &str) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute("telemetry-device", device)
    }
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Midnight UTC of a day.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}
