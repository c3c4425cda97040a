//! Purging expired records by the rules the retention service sends, sparing records
//! under a legal hold.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::RetentionTrigger;
use pdm_runtime::SubjectId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    Store,
    entities::{billing_archive, session, support_ticket, ticket_attachment},
};
use crate::{domain::categories, error::Result};

/// Records of `category` whose trigger happened before `cutoff` have expired.
#[derive(Debug, Clone)]
pub struct PurgeRule {
    /// Category.
    pub category: String,
    /// What the retention period counts from.
    pub trigger: RetentionTrigger,
    /// Cutoff.
    pub cutoff: DateTime<Utc>,
}

/// Whether the category's records count their retention from `trigger`: sessions and
/// tickets from their own time, archived billing records from the account's closure. A
/// rule with any other trigger matches nothing here ("never" means never; tickets are
/// kept while the account exists and go with it).
fn trigger_applies(category: &str, trigger: RetentionTrigger) -> bool {
    match trigger {
        RetentionTrigger::EventTime => {
            category == categories::SESSION.key || category == categories::TICKET.key
        }
        RetentionTrigger::AccountClosed => category == categories::BILLING.key,
        _ => false,
    }
}

/// A legal hold: `None` fields match everything.
#[derive(Debug, Clone)]
pub struct Hold {
    /// Hold id.
    pub hold_id: String,
    /// Subject held.
    pub subject: Option<SubjectId>,
    /// Category held.
    pub category: Option<String>,
}

impl Hold {
    fn covers_category(&self, category: &str) -> bool {
        self.category.as_deref().is_none_or(|c| c == category)
    }
}

/// What a purge did to one category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeOutcome {
    /// Category.
    pub category: String,
    /// Purged (or would be, on a dry run).
    pub purged: u64,
    /// Expired but held.
    pub held: u64,
    /// Holds that blocked records.
    pub hold_ids: Vec<String>,
}

/// Expired candidates: `(row id, subject key)`; the subject key is the subject id, or its
/// blind index for archived records.
type Candidates = Vec<(String, Vec<u8>)>;

impl Store {
    /// Applies the rules this service knows; others are ignored.
    pub async fn purge(
        &self,
        rules: &[PurgeRule],
        holds: &[Hold],
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<PurgeOutcome>> {
        let mut outcomes = Vec::new();
        for rule in rules {
            if !categories::PURGEABLE.contains(&rule.category.as_str()) {
                continue;
            }
            let candidates = if trigger_applies(&rule.category, rule.trigger) {
                self.expired(&rule.category, rule.cutoff).await?
            } else {
                Vec::new()
            };
            let archived = rule.category == categories::BILLING.key;
            let mut outcome = PurgeOutcome {
                category: rule.category.clone(),
                ..PurgeOutcome::default()
            };
            let mut hold_ids = BTreeSet::new();
            let mut doomed = Vec::new();
            let applicable: Vec<&Hold> = holds
                .iter()
                .filter(|h| h.covers_category(&rule.category))
                .collect();
            let held_subjects: HashSet<Vec<u8>> = applicable
                .iter()
                .filter_map(|h| h.subject.as_ref())
                .map(|s| {
                    if archived {
                        self.subject_ref(s)
                    } else {
                        s.to_string().into_bytes()
                    }
                })
                .collect();
            let blanket = applicable.iter().find(|h| h.subject.is_none());
            for (id, subject_key) in candidates {
                if let Some(hold) = blanket {
                    outcome.held += 1;
                    hold_ids.insert(hold.hold_id.clone());
                } else if held_subjects.contains(&subject_key) {
                    outcome.held += 1;
                    for h in &applicable {
                        let key = h.subject.as_ref().map(|s| {
                            if archived {
                                self.subject_ref(s)
                            } else {
                                s.to_string().into_bytes()
                            }
                        });
                        if key.as_deref() == Some(subject_key.as_slice()) {
                            hold_ids.insert(h.hold_id.clone());
                        }
                    }
                } else {
                    doomed.push(id);
                }
            }
            outcome.purged = u64::try_from(doomed.len()).unwrap_or(u64::MAX);
            outcome.hold_ids = hold_ids.into_iter().collect();
            if !dry_run && !doomed.is_empty() {
                self.delete_ids(&rule.category, doomed).await?;
            }
            if archived && !dry_run {
                let swept = self.sweep_archive_keys(now).await?;
                if swept > 0 {
                    tracing::info!(
                        swept,
                        "destroyed billing archive keys left by an interrupted purge"
                    );
                }
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn expired(&self, category: &str, cutoff: DateTime<Utc>) -> Result<Candidates> {
        let db = &self.db;
        Ok(match category {
            c if c == categories::SESSION.key => session::Entity::find()
                .select_only()
                .column(session::Column::TokenHash)
                .column(session::Column::SubjectId)
                .filter(session::Column::CreatedAt.lt(cutoff))
                .into_tuple::<(Vec<u8>, String)>()
                .all(db)
                .await?
                .into_iter()
                .map(|(id, s)| (hex(&id), s.into_bytes()))
                .collect(),
            c if c == categories::TICKET.key => support_ticket::Entity::find()
                .select_only()
                .column(support_ticket::Column::TicketId)
                .column(support_ticket::Column::SubjectId)
                .filter(support_ticket::Column::CreatedAt.lt(cutoff))
                .into_tuple::<(String, String)>()
                .all(db)
                .await?
                .into_iter()
                .map(|(id, s)| (id, s.into_bytes()))
                .collect(),
            c if c == categories::BILLING.key => {
                billing_archive::Entity::find()
                    .select_only()
                    .column(billing_archive::Column::ArchiveId)
                    .column(billing_archive::Column::SubjectRef)
                    .filter(billing_archive::Column::ClosedAt.lt(cutoff))
                    .into_tuple::<(String, Vec<u8>)>()
                    .all(db)
                    .await?
            }
            _ => Vec::new(),
        })
    }

    async fn delete_ids(&self, category: &str, ids: Vec<String>) -> Result<()> {
        let archive_keys: Vec<String> = if category == categories::BILLING.key {
            ids.iter()
                .map(|id| super::erasure::archive_key_id(id))
                .collect()
        } else {
            Vec::new()
        };
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        for chunk in ids.chunks(500) {
            let chunk = chunk.to_vec();
            match category {
                c if c == categories::SESSION.key => {
                    let hashes: Vec<Vec<u8>> = chunk.iter().filter_map(|h| unhex(h)).collect();
                    session::Entity::delete_many()
                        .filter(session::Column::TokenHash.is_in(hashes))
                        .exec(&txn)
                        .await?;
                }
                c if c == categories::TICKET.key => {
                    ticket_attachment::Entity::delete_many()
                        .filter(ticket_attachment::Column::TicketId.is_in(chunk.clone()))
                        .exec(&txn)
                        .await?;
                    support_ticket::Entity::delete_many()
                        .filter(support_ticket::Column::TicketId.is_in(chunk))
                        .exec(&txn)
                        .await?;
                }
                c if c == categories::BILLING.key => {
                    billing_archive::Entity::delete_many()
                        .filter(billing_archive::Column::ArchiveId.is_in(chunk))
                        .exec(&txn)
                        .await?;
                }
                _ => {}
            }
        }
        txn.commit().await?;
        // After the rows; a crash in between leaves keys that `sweep_archive_keys` takes.
        for key in archive_keys {
            self.keys.destroy(&key).await?;
        }
        Ok(())
    }

    /// Destroys billing archive keys whose entry is gone (a purge that died between its
    /// commit and the keys). Only keys older than an hour: a younger one may belong to an
    /// erasure whose entry is not committed yet.
    pub(super) async fn sweep_archive_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let ids = self
            .keys
            .ids_made_before(ARCHIVE_PREFIX, now - chrono::Duration::hours(1))
            .await?;
        let mut destroyed = 0;
        for chunk in ids.chunks(500) {
            let archive_ids: Vec<String> = chunk
                .iter()
                .filter_map(|k| k.strip_prefix(ARCHIVE_PREFIX).map(str::to_owned))
                .collect();
            let kept: std::collections::BTreeSet<String> = billing_archive::Entity::find()
                .select_only()
                .column(billing_archive::Column::ArchiveId)
                .filter(billing_archive::Column::ArchiveId.is_in(archive_ids.clone()))
                .into_tuple::<String>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect();
            for id in archive_ids.iter().filter(|id| !kept.contains(*id)) {
                if self
                    .keys
                    .destroy(&super::erasure::archive_key_id(id))
                    .await?
                {
                    destroyed += 1;
                }
            }
        }
        Ok(destroyed)
    }

    /// Moves the keys of billing archive entries made before the key store out of their
    /// rows into the store (same wrapping: KEK version 1, context `archive:<id>`).
    pub async fn adopt_archive_keys(&self) -> Result<u64> {
        let rows: Vec<(String, Vec<u8>, DateTime<Utc>)> = billing_archive::Entity::find()
            .select_only()
            .column(billing_archive::Column::ArchiveId)
            .column(billing_archive::Column::WrappedKey)
            .column(billing_archive::Column::ClosedAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        let legacy: Vec<pdm_crypto::key_store::StoredKey> = rows
            .into_iter()
            .filter(|(_, wrapped, _)| !wrapped.is_empty())
            .map(|(id, wrapped, closed)| pdm_crypto::key_store::StoredKey {
                subject_id: super::erasure::archive_key_id(&id),
                kek_version: 1,
                wrapped_key: wrapped,
                created_at: closed,
            })
            .collect();
        if legacy.is_empty() {
            return Ok(0);
        }
        self.keys.import(&legacy).await?;
        for key in &legacy {
            let id = key.subject_id.trim_start_matches(ARCHIVE_PREFIX).to_owned();
            billing_archive::Entity::update_many()
                .col_expr(
                    billing_archive::Column::WrappedKey,
                    sea_orm::sea_query::Expr::value(Vec::<u8>::new()),
                )
                .filter(billing_archive::Column::ArchiveId.eq(id))
                .exec(&self.db)
                .await?;
        }
        Ok(u64::try_from(legacy.len()).unwrap_or(u64::MAX))
    }
}

/// The prefix of billing archive keys in the key store.
const ARCHIVE_PREFIX: &str = "archive:";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}
