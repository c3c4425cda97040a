//! The rights service's data keys, kept in its key store apart from its data (see
//! `pdm_runtime::key_store`): a copy of the rights database alone opens nothing. Each
//! request, child report, concern, breach notice and mailbox message has a key of its own; destroying
//! one is what forgets what it sealed, in the database and in every backup of it.

use chrono::{DateTime, Utc};
use pdm_crypto::{
    DataKey,
    key_store::{KeyStoreError, StoredKey},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{
    Store,
    entities::{child_report, concern, outbox, request},
};
use crate::error::{Result, RightsError};

/// What a key seals. Its id in the key store is also the context its key is wrapped
/// under, the same as when keys were kept in the rows (so those move over unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOf<'a> {
    /// A request's details, messages and export package.
    Request(&'a str),
    /// A child report's details.
    Report(&'a str),
    /// A concern's details.
    Concern(&'a str),
    /// One line of the development mailbox file.
    Message(&'a str),
    /// A breach notice's message (its recipient and body in the outbox).
    Notice(&'a str),
}

impl KeyOf<'_> {
    /// The key's id in the key store.
    pub fn id(self) -> String {
        match self {
            Self::Request(id) => format!("request:{id}"),
            Self::Report(id) => format!("child_report:{id}"),
            Self::Concern(id) => format!("concern:{id}"),
            Self::Message(id) => format!("mailbox:{id}"),
            Self::Notice(id) => format!("notice:{id}"),
        }
    }
}

impl From<KeyStoreError> for RightsError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Db(e) => Self::Db(e),
            KeyStoreError::Crypto(e) => Self::Crypto(e),
        }
    }
}

impl Store {
    /// The key of `of`, made now if it has none yet (every caller names a record just
    /// made, so the key is stored without looking for one first).
    pub async fn new_key(&self, of: KeyOf<'_>, now: DateTime<Utc>) -> Result<DataKey> {
        Ok(self.keys.create_or_find(&of.id(), now).await?)
    }

    /// The key of `of`; `None` once it was destroyed.
    pub async fn find_key(&self, of: KeyOf<'_>) -> Result<Option<DataKey>> {
        Ok(self.keys.find(&of.id()).await?)
    }

    /// The key of `of`, which must exist: a request's while it is open, a concern's or a
    /// child report's until they are forgotten.
    pub async fn key(&self, of: KeyOf<'_>) -> Result<DataKey> {
        self.find_key(of).await?.ok_or(RightsError::Internal(
            "the key of a record still in use is gone",
        ))
    }

    /// Destroys the key of `of`; returns whether one existed.
    pub async fn destroy_key(&self, of: KeyOf<'_>) -> Result<bool> {
        Ok(self.keys.destroy(&of.id()).await?)
    }

    /// Moves keys made before the key store, wrapped in the rows themselves under the root
    /// KEK, into the store (KEK version 1, same context) and clears them from those rows.
    /// Run at every start; idempotent, and a crash in between only repeats the import.
    pub async fn adopt_row_keys(&self) -> Result<u64> {
        let has_key = || Expr::cust("length(wrapped_key) > 0");
        let requests: Vec<(String, Vec<u8>, DateTime<Utc>)> = request::Entity::find()
            .select_only()
            .column(request::Column::RequestId)
            .column(request::Column::WrappedKey)
            .column(request::Column::ReceivedAt)
            .filter(has_key())
            .into_tuple()
            .all(self.db())
            .await?;
        let mut adopted = self
            .import_row_keys(&requests, |id| KeyOf::Request(id).id())
            .await?;
        for ids in requests.chunks(BATCH) {
            request::Entity::update_many()
                .col_expr(request::Column::WrappedKey, Expr::value(Vec::<u8>::new()))
                .filter(request::Column::RequestId.is_in(ids.iter().map(|r| r.0.clone())))
                .exec(self.db())
                .await?;
        }
        let reports: Vec<(String, Vec<u8>, DateTime<Utc>)> = child_report::Entity::find()
            .select_only()
            .column(child_report::Column::ReportId)
            .column(child_report::Column::WrappedKey)
            .column(child_report::Column::ReceivedAt)
            .filter(has_key())
            .into_tuple()
            .all(self.db())
            .await?;
        adopted += self
            .import_row_keys(&reports, |id| KeyOf::Report(id).id())
            .await?;
        for ids in reports.chunks(BATCH) {
            child_report::Entity::update_many()
                .col_expr(
                    child_report::Column::WrappedKey,
                    Expr::value(Vec::<u8>::new()),
                )
                .filter(child_report::Column::ReportId.is_in(ids.iter().map(|r| r.0.clone())))
                .exec(self.db())
                .await?;
        }
        let concerns: Vec<(String, Vec<u8>, DateTime<Utc>)> = concern::Entity::find()
            .select_only()
            .column(concern::Column::ConcernId)
            .column(concern::Column::WrappedKey)
            .column(concern::Column::ReceivedAt)
            .filter(has_key())
            .into_tuple()
            .all(self.db())
            .await?;
        adopted += self
            .import_row_keys(&concerns, |id| KeyOf::Concern(id).id())
            .await?;
        for ids in concerns.chunks(BATCH) {
            concern::Entity::update_many()
                .col_expr(concern::Column::WrappedKey, Expr::value(Vec::<u8>::new()))
                .filter(concern::Column::ConcernId.is_in(ids.iter().map(|r| r.0.clone())))
                .exec(self.db())
                .await?;
        }
        let messages: Vec<(String, Vec<u8>, DateTime<Utc>)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::MessageId)
            .column(outbox::Column::FileKey)
            .column(outbox::Column::CreatedAt)
            .filter(Expr::cust("length(file_key) > 0"))
            .into_tuple::<(String, Option<Vec<u8>>, DateTime<Utc>)>()
            .all(self.db())
            .await?
            .into_iter()
            .map(|(id, key, at)| (id, key.unwrap_or_default(), at))
            .collect();
        adopted += self
            .import_row_keys(&messages, |id| KeyOf::Message(id).id())
            .await?;
        for ids in messages.chunks(BATCH) {
            outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::FileKey,
                    Expr::value(MESSAGE_KEY_STORED.to_vec()),
                )
                .filter(outbox::Column::MessageId.is_in(ids.iter().map(|r| r.0.clone())))
                .exec(self.db())
                .await?;
        }
        Ok(adopted)
    }

    /// Imports the non-empty `(row id, wrapped key, made at)` of `rows` under `key_id`.
    async fn import_row_keys(
        &self,
        rows: &[(String, Vec<u8>, DateTime<Utc>)],
        key_id: impl Fn(&str) -> String,
    ) -> Result<u64> {
        let keys: Vec<StoredKey> = rows
            .iter()
            .filter(|(_, wrapped, _)| !wrapped.is_empty())
            .map(|(id, wrapped, at)| StoredKey {
                subject_id: key_id(id),
                kek_version: 1,
                wrapped_key: wrapped.clone(),
                created_at: *at,
            })
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        self.keys.import(&keys).await?;
        Ok(u64::try_from(keys.len()).unwrap_or(u64::MAX))
    }
}

/// What an outbox row's `file_key` holds while its message's key is in the key store
/// (`NULL` once it is destroyed; a non-empty value is a key from before the store).
pub const MESSAGE_KEY_STORED: &[u8] = &[];

/// Rows cleared per statement.
const BATCH: usize = 500;
