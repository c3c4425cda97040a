//! Persistence: the register, mechanisms and the transfer log (erasure receipts are the
//! mesh's, `pdm_runtime::erasure`).

pub mod entities;

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::ErasureReceipt;
use pdm_runtime::{
    SubjectId,
    erasure::{Pseudonymised, Receipts},
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::error::Result;
use entities::{mechanism, recipient, transfer_log};

/// A page of the log.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Recipient.
    pub recipient_id: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Subject.
    pub subject_id: Option<SubjectId>,
    /// From (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// To (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this log id (page token).
    pub before: Option<String>,
    /// Page size.
    pub limit: u64,
}

/// The transfers database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The erasure receipts (`erasures`).
    pub fn receipts(&self) -> pdm_runtime::erasure::Receipts {
        pdm_runtime::erasure::Receipts::new(self.db.clone())
    }

    /// Creates or updates a recipient by key; returns it and whether it was created.
    pub async fn upsert_recipient(
        &self,
        mut row: recipient::Model,
    ) -> Result<(recipient::Model, bool)> {
        let existing = recipient::Entity::find()
            .filter(recipient::Column::Key.eq(row.key.clone()))
            .one(&self.db)
            .await?;
        match existing {
            Some(old) => {
                row.recipient_id = old.recipient_id;
                row.created_at = old.created_at;
                let mut active =
                    sea_orm::ActiveModelTrait::reset_all(row.clone().into_active_model());
                active.recipient_id = sea_orm::ActiveValue::Unchanged(row.recipient_id.clone());
                let updated = sea_orm::ActiveModelTrait::update(active, &self.db).await?;
                Ok((updated, false))
            }
            None => {
                let inserted = recipient::Entity::insert(row.into_active_model())
                    .exec_with_returning(&self.db)
                    .await?;
                Ok((inserted, true))
            }
        }
    }

    /// A recipient.
    pub async fn recipient(&self, id: &str) -> Result<Option<recipient::Model>> {
        Ok(recipient::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// The register, optionally for one country.
    pub async fn recipients(&self, country: Option<&str>) -> Result<Vec<recipient::Model>> {
        let mut q = recipient::Entity::find().order_by_asc(recipient::Column::Key);
        if let Some(c) = country {
            q = q.filter(recipient::Column::Country.eq(c));
        }
        Ok(q.all(&self.db).await?)
    }

    /// Recipients the subject's data went to (allowed transfers).
    pub async fn recipients_of_subject(
        &self,
        subject: &SubjectId,
        now: DateTime<Utc>,
    ) -> Result<Vec<recipient::Model>> {
        let ids: Vec<String> = transfer_log::Entity::find()
            .select_only()
            .column(transfer_log::Column::RecipientId)
            .distinct()
            .filter(transfer_log::Column::SubjectId.eq(subject.to_string()))
            .filter(transfer_log::Column::Allowed.eq(true))
            // A disclosure under a gagging order is not told until the order lapses.
            .filter(
                Condition::any()
                    .add(transfer_log::Column::SecretUntil.is_null())
                    .add(transfer_log::Column::SecretUntil.lte(now)),
            )
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(recipient::Entity::find()
            .filter(recipient::Column::RecipientId.is_in(ids))
            .order_by_asc(recipient::Column::Key)
            .all(&self.db)
            .await?)
    }

    /// Stores a mechanism.
    pub async fn insert_mechanism(&self, row: mechanism::Model) -> Result<mechanism::Model> {
        Ok(mechanism::Entity::insert(row.into_active_model())
            .exec_with_returning(&self.db)
            .await?)
    }

    /// Mechanisms, optionally of one recipient.
    pub async fn mechanisms(&self, recipient_id: Option<&str>) -> Result<Vec<mechanism::Model>> {
        let mut q = mechanism::Entity::find()
            .order_by_asc(mechanism::Column::RecipientId)
            .order_by_asc(mechanism::Column::MechanismId);
        if let Some(r) = recipient_id {
            q = q.filter(mechanism::Column::RecipientId.eq(r));
        }
        Ok(q.all(&self.db).await?)
    }

    /// Active mechanisms expiring or due for review before `until`.
    pub async fn mechanisms_due(&self, until: DateTime<Utc>) -> Result<Vec<mechanism::Model>> {
        Ok(mechanism::Entity::find()
            .filter(mechanism::Column::Status.eq("MECHANISM_STATUS_ACTIVE"))
            .filter(
                Condition::any()
                    .add(mechanism::Column::ExpiresAt.lt(until))
                    .add(mechanism::Column::ReviewDue.lt(until)),
            )
            .all(&self.db)
            .await?)
    }

    /// Appends a decision to the log.
    pub async fn log(&self, row: transfer_log::Model) -> Result<transfer_log::Model> {
        Ok(transfer_log::Entity::insert(row.into_active_model())
            .exec_with_returning(&self.db)
            .await?)
    }

    /// A page of the log, newest first.
    pub async fn log_page(&self, f: &LogFilter) -> Result<Vec<transfer_log::Model>> {
        let mut q = transfer_log::Entity::find().order_by_desc(transfer_log::Column::LogId);
        if let Some(v) = &f.recipient_id {
            q = q.filter(transfer_log::Column::RecipientId.eq(v.clone()));
        }
        if let Some(v) = &f.country {
            q = q.filter(transfer_log::Column::Country.eq(v.clone()));
        }
        if let Some(v) = &f.subject_id {
            q = q.filter(transfer_log::Column::SubjectId.eq(v.to_string()));
        }
        if let Some(v) = f.from {
            q = q.filter(transfer_log::Column::DecidedAt.gte(v));
        }
        if let Some(v) = f.to {
            q = q.filter(transfer_log::Column::DecidedAt.lt(v));
        }
        if let Some(v) = &f.before {
            q = q.filter(transfer_log::Column::LogId.lt(v.clone()));
        }
        Ok(q.limit(f.limit).all(&self.db).await?)
    }

    /// Erasure: the subject's log entries keep the record of the transfer but name a
    /// pseudonym instead of the subject, and the receipt `receipt_of` writes from that is
    /// stored in the same transaction (apart, a stop between the two left the retry's
    /// receipt counting nothing pseudonymised). None, with nothing changed, when an
    /// erasure under the receipt's request id finished first.
    pub async fn pseudonymise(
        &self,
        subject: &SubjectId,
        pseudonym: &str,
        now: DateTime<Utc>,
        receipt_of: impl FnOnce(Pseudonymised) -> ErasureReceipt,
    ) -> Result<Option<ErasureReceipt>> {
        use sea_orm::PaginatorTrait;
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let entries = transfer_log::Entity::update_many()
            .col_expr(transfer_log::Column::SubjectId, Expr::value(pseudonym))
            .filter(transfer_log::Column::SubjectId.eq(subject.to_string()))
            .exec(&txn)
            .await?
            .rows_affected;
        let kept = transfer_log::Entity::find()
            .filter(transfer_log::Column::SubjectId.eq(pseudonym))
            .count(&txn)
            .await?;
        let receipt = receipt_of(Pseudonymised { entries, kept });
        Ok(Receipts::commit_with(txn, pseudonym, receipt, now).await?)
    }

    /// Deletes log entries decided before `cutoff`, except those naming a held subject
    /// (by id or pseudonym): `(purged, held)`.
    pub async fn purge_log(
        &self,
        cutoff: DateTime<Utc>,
        held: &[String],
        dry_run: bool,
    ) -> Result<(u64, u64)> {
        use sea_orm::PaginatorTrait;
        let expired =
            || transfer_log::Entity::find().filter(transfer_log::Column::DecidedAt.lt(cutoff));
        let held_count = if held.is_empty() {
            0
        } else {
            expired()
                .filter(transfer_log::Column::SubjectId.is_in(held.to_vec()))
                .count(&self.db)
                .await?
        };
        let not_held = Condition::any()
            .add(transfer_log::Column::SubjectId.is_null())
            .add(transfer_log::Column::SubjectId.is_not_in(held.to_vec()));
        if dry_run {
            let purgeable = expired().filter(not_held).count(&self.db).await?;
            return Ok((purgeable, held_count));
        }
        let purged = transfer_log::Entity::delete_many()
            .filter(transfer_log::Column::DecidedAt.lt(cutoff))
            .filter(not_held)
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok((purged, held_count))
    }
}
