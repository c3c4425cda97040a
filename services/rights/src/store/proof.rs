//! The end of a request's proof period (see [`crate::domain::proof`]): its personal details
//! go, in one transaction per request, and the row keeps kind, regime, dates, status and
//! outcome under a keyed pseudonym of the subject.

use chrono::{DateTime, Utc};
use pdm_crypto::Keyring;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{
    Store,
    entities::{child_report, outbox, package_chunk, request, request_access, task},
};
use crate::{domain::proof::PSEUDONYM_CONTEXT, error::Result, sealed};

/// Requests forgotten per call at most (the next housekeeping takes the rest).
const BATCH: u64 = 500;

impl Store {
    /// Forgets the personal details of requests closed before `cutoff` and not forgotten
    /// yet: their sealed details (and a child report's) become empty ones, sealed under
    /// the same key so every reader still opens them; the subject becomes its keyed hash
    /// under `keyring`'s blind index. Returns how many.
    pub async fn forget_expired(
        &self,
        cutoff: DateTime<Utc>,
        keyring: &Keyring,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let due: Vec<(String, Option<String>, Vec<u8>)> = request::Entity::find()
            .select_only()
            .column(request::Column::RequestId)
            .column(request::Column::SubjectId)
            .column(request::Column::WrappedKey)
            .filter(request::Column::ClosedAt.lt(cutoff))
            .filter(request::Column::ForgottenAt.is_null())
            .limit(BATCH)
            .into_tuple()
            .all(self.db())
            .await?;
        let mut forgotten = 0;
        for (id, subject, wrapped) in due {
            let key = sealed::key(keyring, &id, &wrapped)?;
            let blank = sealed::seal_details(&key, &sealed::Details::default())?;
            let reports: Vec<(String, Vec<u8>)> = child_report::Entity::find()
                .select_only()
                .column(child_report::Column::ReportId)
                .column(child_report::Column::WrappedKey)
                .filter(child_report::Column::RequestId.eq(id.clone()))
                .into_tuple()
                .all(self.db())
                .await?;
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
            for (report_id, wrapped) in reports {
                let key = sealed::report_key(keyring, &report_id, &wrapped)?;
                let blank = sealed::seal_report(&key, &sealed::ChildReportDetails::default())?;
                child_report::Entity::update_many()
                    .col_expr(
                        child_report::Column::SubjectId,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        child_report::Column::ReportedBy,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(child_report::Column::Details, Expr::value(blank))
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
                    details: Set(blank),
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
}
