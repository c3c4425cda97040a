//! Purging expired records by the rules the retention service sends, sparing records
//! under a legal hold.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::RetentionTrigger;
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
    pub subject: Option<String>,
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
                .filter_map(|h| h.subject.as_deref())
                .map(|s| {
                    if archived {
                        self.subject_ref(s)
                    } else {
                        s.as_bytes().to_vec()
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
                        let key = h.subject.as_deref().map(|s| {
                            if archived {
                                self.subject_ref(s)
                            } else {
                                s.as_bytes().to_vec()
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
        Ok(())
    }
}

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
