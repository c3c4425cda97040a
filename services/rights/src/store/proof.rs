//! The end of a request's proof period (see [`crate::domain::proof`]): its personal details
//! go, in one transaction per request, and the row keeps kind, regime, dates, status and
//! outcome under a keyed pseudonym of the subject. Its key (and that of the child report
//! behind it) is destroyed first, so every backup of the rights database forgets it too.

use chrono::{DateTime, Utc};
use pdm_crypto::Keyring;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect,
    sea_query::Expr,
};

use super::{ConcernStatus, KeyOf, entities::concern};
use super::{
    Store,
    entities::{child_report, outbox, package_chunk, request, request_access, task},
};
use crate::{
    domain::proof::{Held, PSEUDONYM_CONTEXT},
    error::Result,
};

/// Requests forgotten per call at most (the next housekeeping takes the rest).
const BATCH: u64 = 500;

impl Store {
    /// Forgets the personal details of requests closed before `cutoff` and not forgotten
    /// yet: their keys (and a child report's) are destroyed, then their sealed details
    /// emptied; the subject becomes its keyed hash under `keyring`'s blind index. A crash
    /// after the keys went leaves a request that is forgotten again next time. Returns
    /// how many.
    pub async fn forget_expired(
        &self,
        cutoff: DateTime<Utc>,
        held: &Held,
        keyring: &Keyring,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if held.everyone {
            return Ok(0);
        }
        let due: Vec<(String, Option<String>)> = request::Entity::find()
            .select_only()
            .column(request::Column::RequestId)
            .column(request::Column::SubjectId)
            .filter(request::Column::ClosedAt.lt(cutoff))
            .filter(request::Column::ForgottenAt.is_null())
            .filter(not_held(request::Column::SubjectId, held))
            .limit(BATCH)
            .into_tuple()
            .all(self.db())
            .await?;
        let mut forgotten = 0;
        for (id, subject) in due {
            let reports: Vec<String> = child_report::Entity::find()
                .select_only()
                .column(child_report::Column::ReportId)
                .filter(child_report::Column::RequestId.eq(id.clone()))
                .into_tuple()
                .all(self.db())
                .await?;
            let messages: Vec<String> = outbox::Entity::find()
                .select_only()
                .column(outbox::Column::MessageId)
                .filter(outbox::Column::RequestId.eq(id.clone()))
                .filter(outbox::Column::FileKey.is_not_null())
                .into_tuple()
                .all(self.db())
                .await?;
            for message in &messages {
                self.destroy_key(KeyOf::Message(message)).await?;
            }
            self.destroy_key(KeyOf::Request(&id)).await?;
            for report_id in &reports {
                self.destroy_key(KeyOf::Report(report_id)).await?;
            }
            let txn = pdm_runtime::db::begin_write(self.db()).await?;
            // Messages (recipient and body), the export package and who submitted it go.
            outbox::Entity::delete_many()
                .filter(outbox::Column::RequestId.eq(id.clone()))
                .exec(&txn)
                .await?;
            package_chunk::Entity::delete_many()
                .filter(package_chunk::Column::RequestId.eq(id.clone()))
                .exec(&txn)
                .await?;
            request_access::Entity::delete_many()
                .filter(request_access::Column::RequestId.eq(id.clone()))
                .exec(&txn)
                .await?;
            // Which service did what, and when, stays; what they answered (receipts,
            // counts naming the subject) goes.
            task::Entity::update_many()
                .col_expr(task::Column::Result, Expr::value(Option::<String>::None))
                .col_expr(task::Column::LastError, Expr::value(Option::<String>::None))
                .filter(task::Column::RequestId.eq(id.clone()))
                .exec(&txn)
                .await?;
            // A child report behind the request: who reported, about whom, what they said.
            for report_id in reports {
                child_report::Entity::update_many()
                    .col_expr(
                        child_report::Column::SubjectId,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        child_report::Column::ReportedBy,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(child_report::Column::Details, Expr::value(Vec::<u8>::new()))
                    .col_expr(child_report::Column::UpdatedAt, Expr::value(now))
                    .filter(child_report::Column::ReportId.eq(report_id))
                    .exec(&txn)
                    .await?;
            }
            let updated = request::Entity::update_many()
                .set(request::ActiveModel {
                    subject_id: Set(None),
                    subject_ref: Set(subject
                        .as_deref()
                        .map(|s| keyring.blind_index().compute(PSEUDONYM_CONTEXT, s))),
                    client_reference: Set(None),
                    extension_reason: Set(None),
                    details: Set(Vec::new()),
                    trace_parent: Set(None),
                    forgotten_at: Set(Some(now)),
                    updated_at: Set(now),
                    ..Default::default()
                })
                .filter(request::Column::RequestId.eq(id.clone()))
                .filter(request::Column::ForgottenAt.is_null())
                .exec(&txn)
                .await?
                .rows_affected;
            txn.commit().await?;
            forgotten += updated;
        }
        Ok(forgotten)
    }

    /// Forgets concerns closed before `cutoff` (the same proof period as requests): the
    /// key of each is destroyed, then who filed it, whom it named and its sealed words go;
    /// kind, dates and status stay. Returns how many.
    pub async fn forget_closed_concerns(
        &self,
        cutoff: DateTime<Utc>,
        held: &Held,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if held.everyone {
            return Ok(0);
        }
        let due: Vec<String> = concern::Entity::find()
            .select_only()
            .column(concern::Column::ConcernId)
            .filter(concern::Column::Status.eq(ConcernStatus::Closed))
            .filter(concern::Column::ClosedAt.lt(cutoff))
            .filter(Expr::cust("length(details) > 0"))
            .filter(not_held(concern::Column::SubjectId, held))
            .limit(BATCH)
            .into_tuple()
            .all(self.db())
            .await?;
        let mut forgotten = 0;
        for id in due {
            self.destroy_key(KeyOf::Concern(&id)).await?;
            forgotten += concern::Entity::update_many()
                .set(concern::ActiveModel {
                    subject_id: Set(None),
                    reported_by: Set(None),
                    details: Set(Vec::new()),
                    updated_at: Set(now),
                    ..Default::default()
                })
                .filter(concern::Column::ConcernId.eq(id))
                .exec(self.db())
                .await?
                .rows_affected;
        }
        Ok(forgotten)
    }
}

/// Rows naming no subject, or one no hold keeps.
fn not_held(column: impl ColumnTrait, held: &Held) -> Condition {
    Condition::any()
        .add(column.is_null())
        .add(column.is_not_in(held.subjects.iter().cloned()))
}
