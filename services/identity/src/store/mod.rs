//! Persistence: sea-orm entities and the queries the service runs. Personal fields are
//! sealed here on the way in and opened on the way out, so nothing above this module sees
//! ciphertext and nothing below it sees plaintext.

mod accounts;
mod billing;
pub mod entities;
mod erasure;
pub use erasure::FAN_OUT_REASON;
mod export;
mod links;
mod purge;
mod records;
mod sessions;
mod tickets;

use pdm_crypto::{DataKey, KeyStore};
use pdm_runtime::SubjectId;
use sea_orm::DatabaseConnection;

pub use erasure::{Receipt, Retained};
pub use export::ExportRecord;
pub use purge::{Hold, PurgeOutcome, PurgeRule};
pub use records::{
    Billing, NewAccount, NewAttachment, NewTicket, Profile, ProfileChanges, Ticket,
    TicketAttachment,
};

use crate::error::{IdentityError, Result};

/// Blind-index domains.
pub(crate) const EMAIL_INDEX: &str = "email";
pub(crate) const SUBJECT_INDEX: &str = "subject";

/// The identity database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    keys: KeyStore,
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection, keys: KeyStore) -> Self {
        Self { db, keys }
    }

    /// The connection (tests inspect the raw rows).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Blind index of a normalised email.
    pub fn email_index(&self, email: &str) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute(EMAIL_INDEX, email)
    }

    /// Blind index of a subject id (for records kept after the id is erased).
    pub fn subject_ref(&self, subject: &SubjectId) -> Vec<u8> {
        self.keys
            .keyring()
            .blind_index()
            .compute(SUBJECT_INDEX, &subject.to_string())
    }

    /// The subject's key, from the key store.
    async fn key(&self, subject: &SubjectId) -> Result<DataKey> {
        self.keys
            .find(&subject.to_string())
            .await?
            .ok_or(IdentityError::NotFound)
    }
}

/// Opens an optional sealed string.
fn open_opt(key: &DataKey, field: &str, sealed: Option<&Vec<u8>>) -> Result<Option<String>> {
    sealed
        .map(|s| key.open_string(field, s))
        .transpose()
        .map_err(IdentityError::from)
}
