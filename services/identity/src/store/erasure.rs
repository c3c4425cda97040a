//! Erasure: every personal row of the subject and the subject's key go in one
//! transaction; billing records the law makes us keep move to a sealed archive entry with
//! a key of its own, found only by a blind index of the subject id. The archive records
//! only when the account closed: how long it is kept is the retention service's policy
//! `billing.record`, applied when it purges (so an UpsertPolicy reaches entries archived
//! before it, and an erasure needs no answer from retention to complete).

use chrono::{DateTime, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{ErasedItem, ErasureReceipt, RetainedItem},
};
use pdm_runtime::{
    SubjectId,
    convert::timestamp,
    erasure::{Receipts, hex_ref},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
};

use super::{
    Store,
    billing::open_billing,
    entities::{
        account, billing_archive, billing_contact, deletion_reason, login_throttle, profile_photo,
        session, subject_link, support_ticket, ticket_attachment,
    },
};
use crate::{
    domain::categories,
    error::{IdentityError, Result},
};

pub(super) const F_ARCHIVE: &str = "billing_archive.record";

/// The key store id of a billing archive entry's key.
pub(super) fn archive_key_id(archive_id: &str) -> String {
    format!("archive:{archive_id}")
}

/// Why the archived billing record is kept. Policy, "How long we keep your information":
/// "unless a longer retention period is required or permitted by law (such as tax,
/// accounting ...)"; the period itself is the retention policy's, not written here.
const BILLING_KEPT: &str = "billing records are kept for tax and accounting law after the \
                                account closes, sealed and out of use, for the period of the \
                                retention policy billing.record (the retention schedule gives \
                                the date)";

/// What an erasure did (stored as the mesh's `ErasureReceipt`, without the subject id).
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Request id.
    pub request_id: String,
    /// Subject id.
    pub subject_id: String,
    /// `(category, count)` erased.
    pub erased: Vec<(String, u64)>,
    /// What is kept and why.
    pub retained: Vec<Retained>,
    /// When it completed.
    pub completed_at: DateTime<Utc>,
    /// Whether a subject key existed and was destroyed.
    pub key_destroyed: bool,
    /// When the key store's backups that may hold the destroyed key are gone.
    pub key_backups_gone_by: Option<DateTime<Utc>>,
}

/// Records kept after an erasure.
#[derive(Debug, Clone)]
pub struct Retained {
    /// Category.
    pub category: String,
    /// Legal basis (proto enum name).
    pub legal_basis: String,
    /// Why, in words. No date: the retention service's schedule has it, from its policy
    /// in force.
    pub reason: String,
    /// How many.
    pub count: u64,
}

impl Receipt {
    /// The mesh's receipt.
    pub fn into_proto(self) -> ErasureReceipt {
        ErasureReceipt {
            request_id: self.request_id,
            subject_id: self.subject_id,
            service: crate::NAME.to_owned(),
            erased: self
                .erased
                .into_iter()
                .map(|(category, count)| ErasedItem { category, count })
                .collect(),
            retained: self
                .retained
                .into_iter()
                .map(|k| RetainedItem {
                    category: k.category,
                    legal_basis: LegalBasis::from_str_name(&k.legal_basis)
                        .unwrap_or(LegalBasis::Unspecified) as i32,
                    reason: k.reason,
                    // The date is the retention schedule's (policy billing.record in force).
                    retain_until: None,
                    count: k.count,
                })
                .collect(),
            completed_at: Some(timestamp(self.completed_at)),
            key_destroyed: self.key_destroyed,
            key_backups_gone_by: self.key_backups_gone_by.map(timestamp),
        }
    }
}

impl Store {
    /// Records the subject's own deletion reason on an erasure that rights' fan-out
    /// (`EraseSubject`, reason `erasure_request`) completed first for the same request:
    /// DeleteAccount and the fan-out race, and the reason must not depend on who wins.
    async fn keep_reason(&self, request_id: &str, reason: &str) -> Result<()> {
        if reason == FAN_OUT_REASON {
            return Ok(());
        }
        deletion_reason::Entity::update_many()
            .col_expr(
                deletion_reason::Column::Reason,
                sea_orm::sea_query::Expr::value(reason.to_owned()),
            )
            .filter(deletion_reason::Column::RequestId.eq(request_id))
            .filter(deletion_reason::Column::Reason.eq(FAN_OUT_REASON))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Erases the subject; idempotent per `request_id`.
    pub async fn erase(
        &self,
        request_id: &str,
        subject: &SubjectId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasureReceipt> {
        let blind = self.subject_ref(subject);
        let subject_ref = hex_ref(&blind);
        let subject_id = subject.to_string();
        let receipts = Receipts::new(self.db.clone());
        if let Some(done) = receipts.find(request_id, &subject_id, &subject_ref).await? {
            // A retry after a crash between the commit and the key's destruction.
            self.keys.destroy(&subject_id).await?;
            self.keep_reason(request_id, reason).await?;
            return Ok(done);
        }
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let receipt = self
            .erase_in(&txn, request_id, subject, &blind, now)
            .await?
            .into_proto();
        if !Receipts::insert(&txn, &subject_ref, &receipt, now).await? {
            // The same request ran concurrently and finished first: answer with its receipt.
            txn.rollback().await?;
            self.keep_reason(request_id, reason).await?;
            return receipts
                .find(request_id, &subject_id, &subject_ref)
                .await?
                .ok_or(IdentityError::Internal("erasure receipt vanished"));
        }
        deletion_reason::Entity::insert(deletion_reason::ActiveModel {
            request_id: Set(request_id.to_owned()),
            reason: Set(reason.to_owned()),
        })
        .exec(&txn)
        .await?;
        txn.commit().await?;
        // The key store is another database: the key goes once the rows are gone (the
        // billing archive needed it), and a retry of this request destroys it if a crash
        // came in between.
        self.keys.destroy(&subject_id).await?;
        Ok(receipt)
    }

    /// The receipt of an erasure already done under `request_id` for `subject`, if any,
    /// with the subject's key destroyed should a crash have left it behind (as
    /// [`Store::erase`]'s retry does: a retried DeleteAccount is answered here, never
    /// erasing again); `ReceiptError::Reused` when the id was used for another subject.
    pub async fn erasure_receipt(
        &self,
        request_id: &str,
        subject: &SubjectId,
    ) -> Result<Option<ErasureReceipt>> {
        let subject_ref = hex_ref(&self.subject_ref(subject));
        let subject_id = subject.to_string();
        let done = Receipts::new(self.db.clone())
            .find(request_id, &subject_id, &subject_ref)
            .await?;
        if done.is_some() {
            self.keys.destroy(&subject_id).await?;
        }
        Ok(done)
    }

    async fn erase_in(
        &self,
        txn: &DatabaseTransaction,
        request_id: &str,
        subject_id: &SubjectId,
        subject_ref: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Receipt> {
        let subject = subject_id.to_string();
        let subject = subject.as_str();
        let account = account::Entity::find_by_id(subject.to_owned())
            .one(txn)
            .await?;
        if let Some(billing) = billing_contact::Entity::find_by_id(subject.to_owned())
            .one(txn)
            .await?
        {
            self.archive_billing(txn, subject_id, subject_ref, &billing, now)
                .await?;
        }

        let mut erased = Vec::new();
        let mut count = |category: &str, n: u64| {
            if n > 0 {
                erased.push((category.to_owned(), n));
            }
        };
        let attachments = ticket_attachment::Entity::delete_many()
            .filter(ticket_attachment::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        let tickets = support_ticket::Entity::delete_many()
            .filter(support_ticket::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        let photos = profile_photo::Entity::delete_many()
            .filter(profile_photo::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        let sessions = session::Entity::delete_many()
            .filter(session::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        // Which clients served the subject goes too: the id is personal data.
        subject_link::Entity::delete_many()
            .filter(subject_link::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?;
        let billing = billing_contact::Entity::delete_many()
            .filter(billing_contact::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        if let Some(account) = &account {
            login_throttle::Entity::delete_many()
                .filter(login_throttle::Column::EmailIndex.eq(account.email_index.clone()))
                .exec(txn)
                .await?;
        }
        let accounts = account::Entity::delete_many()
            .filter(account::Column::SubjectId.eq(subject))
            .exec(txn)
            .await?
            .rows_affected;
        // Destroyed by `erase` once this transaction has committed.
        let key_destroyed = self.keys.exists(subject).await?;

        count(categories::PROFILE.key, accounts);
        count(categories::CREDENTIALS.key, accounts);
        count(categories::PHOTO.key, photos);
        count(categories::SESSION.key, sessions);
        count(categories::TICKET.key, tickets + attachments);
        count(categories::BILLING.key, billing);

        let archived = billing_archive::Entity::find()
            .filter(billing_archive::Column::SubjectRef.eq(subject_ref.to_vec()))
            .all(txn)
            .await?;
        let retained = if archived.is_empty() {
            Vec::new()
        } else {
            vec![Retained {
                category: categories::BILLING.key.to_owned(),
                legal_basis: LegalBasis::LegalObligation.as_str_name().to_owned(),
                reason: BILLING_KEPT.to_owned(),
                count: u64::try_from(archived.len()).unwrap_or(u64::MAX),
            }]
        };

        Ok(Receipt {
            request_id: request_id.to_owned(),
            subject_id: subject.to_owned(),
            erased,
            retained,
            completed_at: now,
            key_destroyed,
            key_backups_gone_by: key_destroyed.then(|| self.keys.backups_gone_by(now)),
        })
    }

    async fn archive_billing(
        &self,
        txn: &DatabaseTransaction,
        subject: &SubjectId,
        subject_ref: &[u8],
        billing: &billing_contact::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = self.key(subject).await?;
        let contact = open_billing(&key, billing)?;
        let archive_id = uuid::Uuid::now_v7().to_string();
        // The entry's key lives in the key store like the subjects' keys: destroyed when
        // the entry is purged, so no backup of the data opens it afterwards.
        let archive_key = self
            .keys
            .find_or_create(&archive_key_id(&archive_id), now)
            .await?;
        let record = serde_json::to_vec(&contact)
            .map_err(|_| IdentityError::Internal("archive encoding"))?;
        billing_archive::Entity::insert(billing_archive::ActiveModel {
            archive_id: Set(archive_id),
            subject_ref: Set(subject_ref.to_vec()),
            wrapped_key: Set(Vec::new()),
            record: Set(archive_key.seal(F_ARCHIVE, &record)?),
            closed_at: Set(now),
        })
        .exec(txn)
        .await?;
        Ok(())
    }

    /// Rows that still name the subject, table by table (tests and self-checks).
    pub async fn rows_naming(&self, subject: &SubjectId) -> Result<Vec<(&'static str, u64)>> {
        let subject = subject.to_string();
        let subject = subject.as_str();
        let db = &self.db;
        let mut found = Vec::new();
        let mut add = |table: &'static str, n: u64| {
            if n > 0 {
                found.push((table, n));
            }
        };
        add(
            "accounts",
            account::Entity::find_by_id(subject.to_owned())
                .count(db)
                .await?,
        );
        add(
            "profile_photos",
            profile_photo::Entity::find_by_id(subject.to_owned())
                .count(db)
                .await?,
        );
        add(
            "sessions",
            session::Entity::find()
                .filter(session::Column::SubjectId.eq(subject))
                .count(db)
                .await?,
        );
        add(
            "billing_contacts",
            billing_contact::Entity::find_by_id(subject.to_owned())
                .count(db)
                .await?,
        );
        add(
            "support_tickets",
            support_ticket::Entity::find()
                .filter(support_ticket::Column::SubjectId.eq(subject))
                .count(db)
                .await?,
        );
        add(
            "ticket_attachments",
            ticket_attachment::Entity::find()
                .filter(ticket_attachment::Column::SubjectId.eq(subject))
                .count(db)
                .await?,
        );
        add(
            "subject_keys",
            pdm_crypto::key_store::entity::Entity::find_by_id(subject.to_owned())
                .count(self.keys.db())
                .await?,
        );
        Ok(found)
    }
}

/// The reason an erasure asked for by rights' fan-out records (no reason of the subject's).
pub const FAN_OUT_REASON: &str = "erasure_request";
