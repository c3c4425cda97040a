//! Erasure receipts, one per request id, in each erasing service's own database: the
//! mesh's idempotent-erasure contract in one place. An `EraseSubject` retried under the
//! same request id answers with the first receipt; a request id that erased another
//! subject is refused (`request_id`: [`REUSED`]), whichever service is asked.
//!
//! A receipt is stored without the subject id (the point of an erasure is that the id is
//! gone): the service keeps its own reference to the subject beside it — a keyed
//! pseudonym or blind index, never reversible — and fills the id back in when the same
//! subject asks again.

pub mod entity;
pub mod held;
pub mod migration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{EraseSubjectRequest, ErasedItem, ErasureReceipt, RetainedItem},
};
use prost::Message;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
};
use tonic::Status;

pub use migration::CreateErasureReceipts;

use crate::{FieldViolations, SubjectId, ids::check_request_id};

/// The field violation of a request id that erased another subject.
pub const REUSED: &str = "already used for another subject";

/// What can go wrong with a receipt.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The request id erased another subject.
    #[error("request id {REUSED}")]
    Reused,
    /// A stored receipt does not decode.
    #[error("stored erasure receipt does not decode")]
    Corrupt,
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
}

impl ReceiptError {
    /// The gRPC status, with `service` naming where a database failed.
    pub fn into_status(self, service: &'static str) -> Status {
        match self {
            Self::Reused => crate::error::invalid_field("request_id", REUSED),
            Self::Corrupt => crate::error::internal(service, "receipt decoding"),
            Self::Db(e) => crate::error::database(service, &e),
        }
    }
}

/// The fields of an `EraseSubject` request, checked together.
pub fn erase_request(r: &EraseSubjectRequest) -> Result<(String, SubjectId), Status> {
    let mut v = FieldViolations::new();
    let request_id = v.check("request_id", check_request_id(&r.request_id));
    let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
    v.finish()?;
    match (request_id, subject) {
        (Some(id), Some(subject)) => Ok((id.to_owned(), subject)),
        _ => Err(crate::error::internal(
            "erasure",
            "validated request incomplete",
        )),
    }
}

/// A byte reference (a blind index, a keyed hash) as the text the table holds.
pub fn hex_ref(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The encoded receipt as stored: without the subject id.
pub fn encode(receipt: &ErasureReceipt) -> String {
    let stored = ErasureReceipt {
        subject_id: String::new(),
        ..receipt.clone()
    };
    STANDARD.encode(stored.encode_to_vec())
}

fn decode(encoded: &str, subject_id: &str) -> Result<ErasureReceipt, ReceiptError> {
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| ReceiptError::Corrupt)?;
    let receipt = ErasureReceipt::decode(bytes.as_slice()).map_err(|_| ReceiptError::Corrupt)?;
    Ok(ErasureReceipt {
        subject_id: subject_id.to_owned(),
        ..receipt
    })
}

/// What an erasure that pseudonymises a subject's entries did, for its receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pseudonymised {
    /// Entries that lost the subject id for its pseudonym.
    pub entries: u64,
    /// Entries kept under the pseudonym, these and any pseudonymised before.
    pub kept: u64,
}

/// What a service keeps under the pseudonym after an erasure, as a legal obligation.
#[derive(Debug, Clone, Copy)]
pub struct KeptRecord {
    /// Its retention category.
    pub category: &'static str,
    /// Why it is kept, as the receipt tells the subject.
    pub reason: &'static str,
}

impl Pseudonymised {
    /// `service`'s receipt for erasing `subject` under `request_id`: the entries that lost
    /// the subject id counted under `unlinked`, the entries kept under the pseudonym as
    /// `kept` says (each listed only when there are any).
    pub fn receipt(
        self,
        request_id: &str,
        subject: &SubjectId,
        service: &str,
        unlinked: &str,
        kept: KeptRecord,
        now: DateTime<Utc>,
    ) -> ErasureReceipt {
        ErasureReceipt {
            request_id: request_id.to_owned(),
            subject_id: subject.to_string(),
            service: service.to_owned(),
            erased: (self.entries > 0)
                .then(|| ErasedItem {
                    category: unlinked.to_owned(),
                    count: self.entries,
                })
                .into_iter()
                .collect(),
            retained: (self.kept > 0)
                .then(|| RetainedItem {
                    category: kept.category.to_owned(),
                    legal_basis: LegalBasis::LegalObligation as i32,
                    reason: kept.reason.to_owned(),
                    retain_until: None,
                    count: self.kept,
                })
                .into_iter()
                .collect(),
            completed_at: Some(crate::convert::timestamp(now)),
            key_destroyed: false,
            key_backups_gone_by: None,
        }
    }
}

/// The erasure receipts of one service's database.
#[derive(Clone, Debug)]
pub struct Receipts {
    db: DatabaseConnection,
}

impl Receipts {
    /// Receipts in `db` (migrated with [`CreateErasureReceipts`]).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The receipt of an erasure already done under `request_id`, for the subject
    /// `subject_id` whose reference is `subject_ref`; [`ReceiptError::Reused`] when the id
    /// erased another subject.
    pub async fn find(
        &self,
        request_id: &str,
        subject_id: &str,
        subject_ref: &str,
    ) -> Result<Option<ErasureReceipt>, ReceiptError> {
        let Some(row) = entity::Entity::find_by_id(request_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if row.subject_ref != subject_ref {
            return Err(ReceiptError::Reused);
        }
        decode(&row.receipt, subject_id).map(Some)
    }

    /// Stores `receipt` in `txn`, the transaction that erased, and commits both: an
    /// erasure is never stored without its receipt (apart, a stop between the two left a
    /// retry to find nothing left to erase and a receipt saying so). None, with `txn`
    /// rolled back, when an erasure under the same request id finished first: the caller
    /// answers with its receipt ([`Receipts::find`]).
    pub async fn commit_with(
        txn: DatabaseTransaction,
        subject_ref: &str,
        receipt: ErasureReceipt,
        now: DateTime<Utc>,
    ) -> Result<Option<ErasureReceipt>, DbErr> {
        if !Self::insert(&txn, subject_ref, &receipt, now).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(receipt))
    }

    /// Inserts `receipt` in the caller's transaction, erasing and recording together;
    /// `false` when its request id is stored already (the caller rolls back and asks
    /// [`Receipts::find`]).
    pub async fn insert<C: ConnectionTrait>(
        conn: &C,
        subject_ref: &str,
        receipt: &ErasureReceipt,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let result = entity::Entity::insert(entity::ActiveModel {
            request_id: Set(receipt.request_id.clone()),
            subject_ref: Set(subject_ref.to_owned()),
            receipt: Set(encode(receipt)),
            completed_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec(conn)
        .await?;
        Ok(!matches!(result, sea_orm::TryInsertResult::Conflicted))
    }
}
