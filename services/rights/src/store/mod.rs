//! Persistence: requests and their tasks, sealed export chunks, the outbox.

mod concerns;
pub mod entities;
mod keys;
mod messages;
mod notices;
mod proof;
pub mod status;

pub use keys::{KeyOf, MESSAGE_KEY_STORED};
pub use status::{ChildReportStatus, ConcernStatus, MessageStatus, RequestStatus, TaskStatus};

use chrono::{DateTime, Utc};
use pdm_crypto::KeyStore;
use pdm_runtime::SubjectId;
use sea_orm::{
    ActiveEnum,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Query},
};

use crate::{domain::mailbox::erasing_kinds, error::Result};
use entities::{child_report, outbox, package_chunk, request, request_access, task};

/// Filters for ListRequests.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// In this state.
    pub status: Option<RequestStatus>,
    /// Kind name.
    pub kind: Option<String>,
    /// Due before.
    pub due_before: Option<DateTime<Utc>>,
    /// Open and past due at this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Page: requests after this id (in due order ties broken by id).
    pub after: Option<(DateTime<Utc>, String)>,
    /// Page size.
    pub limit: u64,
}

/// Requests open, and those of them overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Awaiting verification or in progress.
    pub open: u64,
    /// Open and past their deadline.
    pub overdue: u64,
}

/// The states of a task still to run ([`TaskStatus::TO_RUN`]) as SQL literals, as the
/// `tasks_to_run` index's predicate names them: a claim with bound values instead could
/// not use that index once PostgreSQL plans it generically.
const TO_RUN_SQL: &str = "status IN ('pending', 'failed')";
/// A running task ([`TaskStatus::Running`]) as an SQL literal, as the `tasks_leased`
/// index's predicate names it.
const RUNNING_SQL: &str = "status = 'running'";

/// The rights database, and the key store its sealed fields open with.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    keys: KeyStore,
}

impl Store {
    /// A store over a migrated database and the rights key store.
    pub fn new(db: DatabaseConnection, keys: KeyStore) -> Self {
        Self { db, keys }
    }

    /// The rights database and key store `settings` name, without starting the service:
    /// for the command line and tests.
    pub async fn connect(settings: &pdm_runtime::Settings) -> anyhow::Result<Self> {
        let target = pdm_runtime::db::DatabaseTarget::resolve(settings, crate::NAME)?;
        let db = pdm_runtime::db::connect(settings, &target).await?;
        let (kek, _) = pdm_runtime::keys::load_kek(settings)?;
        let keys = pdm_runtime::key_store::connect(settings, crate::NAME, &kek).await?;
        Ok(Self::new(db, keys))
    }

    /// The connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Stores a request, its tasks and the message confirming its receipt (when one is
    /// owed) together: a request is never stored without the confirmation the subject is
    /// owed (CCPA: within 10 business days; here, at once).
    pub async fn insert_request(
        &self,
        row: request::Model,
        tasks: Vec<task::Model>,
        submitted_by: Option<String>,
        receipt: Option<outbox::Model>,
    ) -> Result<()> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        insert_request_in(&txn, row, tasks, submitted_by).await?;
        insert_message(&txn, receipt).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Stores a child report.
    pub async fn insert_child_report(&self, row: child_report::Model) -> Result<()> {
        child_report::Entity::insert(row.into_active_model())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A child report.
    pub async fn child_report(&self, id: &str) -> Result<Option<child_report::Model>> {
        Ok(child_report::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Child reports, oldest first, after the report `after` (a page token).
    pub async fn child_reports(
        &self,
        waiting_only: bool,
        after: Option<(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<Vec<child_report::Model>> {
        let mut q = child_report::Entity::find()
            .order_by_asc(child_report::Column::ReceivedAt)
            .order_by_asc(child_report::Column::ReportId);
        if waiting_only {
            q = q.filter(child_report::Column::Status.eq(ChildReportStatus::Reported));
        }
        if let Some((at, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(child_report::Column::ReceivedAt.gt(at))
                    .add(
                        Condition::all()
                            .add(child_report::Column::ReceivedAt.eq(at))
                            .add(child_report::Column::ReportId.gt(id)),
                    ),
            );
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }

    /// Confirms a waiting child report into its erasure request, tasks and all, in one
    /// transaction; false (nothing stored) when it was no longer waiting.
    pub async fn confirm_child_report(
        &self,
        report_id: &str,
        subject: &SubjectId,
        row: request::Model,
        tasks: Vec<task::Model>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let request_id = row.request_id.clone();
        let updated = child_report::Entity::update_many()
            .col_expr(
                child_report::Column::Status,
                Expr::value(ChildReportStatus::Confirmed),
            )
            .col_expr(child_report::Column::ConfirmedAt, Expr::value(now))
            .col_expr(
                child_report::Column::SubjectId,
                Expr::value(subject.to_string()),
            )
            .col_expr(child_report::Column::RequestId, Expr::value(&request_id))
            .col_expr(child_report::Column::UpdatedAt, Expr::value(now))
            .filter(child_report::Column::ReportId.eq(report_id))
            .filter(child_report::Column::Status.eq(ChildReportStatus::Reported))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated == 0 {
            return Ok(false);
        }
        insert_request_in(&txn, row, tasks, Some("admin".to_owned())).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Who may see a request (none for requests stored before access was recorded).
    pub async fn access(&self, id: &str) -> Result<Option<request_access::Model>> {
        Ok(request_access::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Records the hash of a request's download token unless one was given out already;
    /// whether this one was recorded.
    pub async fn issue_download_token(&self, id: &str, hash: Vec<u8>) -> Result<bool> {
        let updated = request_access::Entity::update_many()
            .col_expr(
                request_access::Column::DownloadTokenHash,
                sea_orm::sea_query::Expr::value(hash),
            )
            .filter(request_access::Column::RequestId.eq(id))
            .filter(request_access::Column::DownloadTokenHash.is_null())
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Marks the download token used, if it is `hash` and unused; whether it was.
    pub async fn use_download_token(
        &self,
        id: &str,
        hash: Vec<u8>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let updated = request_access::Entity::update_many()
            .col_expr(
                request_access::Column::DownloadTokenUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(request_access::Column::RequestId.eq(id))
            .filter(request_access::Column::DownloadTokenHash.eq(hash))
            .filter(request_access::Column::DownloadTokenUsedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Requests still in progress whose every task has finished: a crash between the last
    /// task and the close leaves these behind; the worker closes them at start.
    pub async fn finished_but_open(&self) -> Result<Vec<String>> {
        let unfinished = Query::select()
            .expr(Expr::val(1))
            .from(task::Entity)
            .and_where(
                Expr::col((task::Entity, task::Column::RequestId))
                    .equals((request::Entity, request::Column::RequestId)),
            )
            .and_where(task::Column::Status.is_not_in(TaskStatus::FINISHED))
            .to_owned();
        Ok(request::Entity::find()
            .select_only()
            .column(request::Column::RequestId)
            .filter(request::Column::Status.eq(RequestStatus::InProgress))
            .filter(Expr::exists(unfinished).not())
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// A request by the caller's idempotency key.
    pub async fn by_client_reference(&self, reference: &str) -> Result<Option<request::Model>> {
        Ok(request::Entity::find()
            .filter(request::Column::ClientReference.eq(reference))
            .one(&self.db)
            .await?)
    }

    /// A request.
    pub async fn request(&self, id: &str) -> Result<Option<request::Model>> {
        Ok(request::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// The requests of `ids` (repeats allowed), in one query.
    pub async fn requests<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<request::Model>> {
        let mut ids: Vec<&str> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(request::Entity::find()
            .filter(request::Column::RequestId.is_in(ids))
            .all(&self.db)
            .await?)
    }

    /// How many of a request's tasks have not finished.
    pub async fn unfinished_tasks(&self, id: &str) -> Result<u64> {
        Ok(task::Entity::find()
            .filter(task::Column::RequestId.eq(id))
            .filter(task::Column::Status.is_not_in(TaskStatus::FINISHED))
            .count(&self.db)
            .await?)
    }

    /// A request's tasks.
    pub async fn tasks_of(&self, id: &str) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::RequestId.eq(id))
            .order_by_asc(task::Column::Service)
            .order_by_asc(task::Column::Action)
            .all(&self.db)
            .await?)
    }

    /// Marks a waiting request verified and stores its tasks and the message confirming
    /// its receipt (when one is owed), in one transaction; false (nothing stored) if it
    /// was no longer waiting.
    pub async fn verify(
        &self,
        id: &str,
        subject: &SubjectId,
        details: Vec<u8>,
        tasks: Vec<task::Model>,
        receipt: Option<outbox::Model>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let updated = request::Entity::update_many()
            .col_expr(
                request::Column::Status,
                Expr::value(RequestStatus::InProgress),
            )
            .col_expr(request::Column::SubjectId, Expr::value(subject.to_string()))
            .col_expr(request::Column::VerifiedAt, Expr::value(now))
            .col_expr(request::Column::Details, Expr::value(details))
            .col_expr(request::Column::UpdatedAt, Expr::value(now))
            .filter(request::Column::RequestId.eq(id))
            .filter(request::Column::Status.eq(RequestStatus::VerificationRequired))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated == 0 {
            return Ok(false);
        }
        if !tasks.is_empty() {
            task::Entity::insert_many(tasks.into_iter().map(IntoActiveModel::into_active_model))
                .exec(&txn)
                .await?;
        }
        insert_message(&txn, receipt).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` tasks whose runner's lease ran out, then tasks that are due,
    /// children first, then oldest, for the replica `owner`: one statement, so a claim
    /// costs one round trip whatever its size. Each kind is selected apart, in the order
    /// of an index (`tasks_leased`, `tasks_to_run`), so a claim reads `limit` rows however
    /// long the queue: selecting both with one OR sorted the whole due queue at every
    /// claim. Two replicas never claim the same task: on PostgreSQL the condition is
    /// checked again on each row the update takes (a row another claim changed meanwhile
    /// is re-read) and rows another claim holds are skipped rather than waited for; SQLite
    /// runs one writer at a time.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
        lease: chrono::Duration,
        owner: &str,
    ) -> Result<Vec<task::Model>> {
        let statement = self.claim_statement(now, limit, lease, owner);
        let mut claimed = task::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await?;
        // RETURNING gives no order: children first, then oldest, as selected.
        claimed.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.next_attempt_at.cmp(&b.next_attempt_at))
                .then(a.request_id.cmp(&b.request_id))
        });
        Ok(claimed)
    }

    /// The statement [`Store::claim_due`] runs, for this store's database (public so that
    /// a test can ask the database how it plans it).
    pub fn claim_statement(
        &self,
        now: DateTime<Utc>,
        limit: u64,
        lease: chrono::Duration,
        owner: &str,
    ) -> sea_orm::Statement {
        let backend = self.db.get_database_backend();
        let expired = || {
            Condition::all()
                .add(Expr::cust(RUNNING_SQL))
                .add(task::Column::LeaseUntil.lt(now))
        };
        let due = || {
            Condition::all()
                .add(Expr::cust(TO_RUN_SQL))
                .add(task::Column::NextAttemptAt.lte(now))
        };
        // A row is named by its rowid on SQLite: its planner reads a list of primary keys
        // by scanning the table (28 ms a claim at 100,000 waiting tasks), a list of rowids
        // by lookup. PostgreSQL looks the keys up in the primary key.
        let on_sqlite = backend == sea_orm::DbBackend::Sqlite;
        let key = || -> Expr {
            if on_sqlite {
                Expr::col(Alias::new("rowid"))
            } else {
                Expr::tuple([
                    Expr::col(task::Column::RequestId),
                    Expr::col(task::Column::Service),
                    Expr::col(task::Column::Action),
                ])
            }
        };
        let select_key = |select: &mut sea_orm::sea_query::SelectStatement| {
            if on_sqlite {
                select.column(Alias::new("rowid"));
            } else {
                select.columns([
                    task::Column::RequestId,
                    task::Column::Service,
                    task::Column::Action,
                ]);
            }
        };
        let keys_of = |condition: Condition, order: &[(task::Column, sea_orm::Order)]| {
            let mut select = Query::select();
            select_key(&mut select);
            select.from(task::Entity).cond_where(condition);
            for (column, direction) in order {
                select.order_by(*column, direction.clone());
            }
            select
                .limit(limit)
                .lock_with_behavior(
                    sea_orm::sea_query::LockType::Update,
                    sea_orm::sea_query::LockBehavior::SkipLocked,
                )
                .to_owned()
        };
        let expired_keys = keys_of(
            expired(),
            &[(task::Column::LeaseUntil, sea_orm::Order::Asc)],
        );
        let due_keys = keys_of(
            due(),
            &[
                (task::Column::Priority, sea_orm::Order::Desc),
                (task::Column::NextAttemptAt, sea_orm::Order::Asc),
                // A request's tasks side by side: claimed together, they share one read
                // of the request and its key, and only the last of them to end counts
                // what is left of the request.
                (task::Column::RequestId, sea_orm::Order::Asc),
            ],
        );
        // Each locked select sits in a table of its own: PostgreSQL refuses FOR UPDATE
        // directly under a UNION. The expired come first and the whole takes `limit`.
        let mut keys = Query::select();
        select_key(&mut keys);
        let mut due_part = Query::select();
        select_key(&mut due_part);
        keys.from_subquery(expired_keys, Alias::new("expired"))
            .union(
                sea_orm::sea_query::UnionType::All,
                due_part
                    .from_subquery(due_keys, Alias::new("due"))
                    .to_owned(),
            )
            .limit(limit);
        // Chosen once, in a WITH (evaluated once by definition): with the choice under
        // `IN (…)` instead, a claim of 3 took all 9 tasks of a fresh PostgreSQL table
        // (`a_claim_takes_lapsed_leases_first_and_no_more_than_its_limit`).
        let chosen = Alias::new("chosen");
        let mut chosen_keys = Query::select();
        select_key(&mut chosen_keys);
        chosen_keys.from(chosen.clone());
        let mut taken = Condition::all().add(key().in_subquery(chosen_keys.to_owned()));
        if !on_sqlite {
            // Checked again on the rows taken: another claim may have changed one since.
            // On SQLite an UPDATE holds the write lock from its first step, its WITH
            // included, so nothing can.
            taken = taken.add(Condition::any().add(expired()).add(due()));
        }
        let claim = Query::update()
            .table(task::Entity)
            .value(task::Column::Status, Expr::value(TaskStatus::Running))
            .value(task::Column::LeaseUntil, Expr::value(now + lease))
            .value(task::Column::LeaseOwner, Expr::value(owner))
            .value(
                task::Column::Attempts,
                Expr::col(task::Column::Attempts).add(1),
            )
            .value(task::Column::UpdatedAt, Expr::value(now))
            .cond_where(taken)
            .returning_all()
            .to_owned()
            .with(
                sea_orm::sea_query::WithClause::new()
                    .cte(
                        sea_orm::sea_query::CommonTableExpression::new()
                            .query(keys.to_owned())
                            .table_name(chosen)
                            .materialized(true)
                            .to_owned(),
                    )
                    .to_owned(),
            );
        self.db.get_database_backend().build(&claim)
    }

    /// Makes the tasks `owner` left running when it stopped (or was killed) claimable at
    /// once; returns how many. Other replicas' running tasks are theirs until their lease
    /// runs out.
    pub async fn reclaim_running(&self, now: DateTime<Utc>, owner: &str) -> Result<u64> {
        Ok(task::Entity::update_many()
            .col_expr(
                task::Column::LeaseUntil,
                Expr::value(now - chrono::Duration::seconds(1)),
            )
            .filter(task::Column::Status.eq(TaskStatus::Running))
            .filter(task::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Extends the lease of a task `t` its runner is still running; false when the task
    /// is no longer under that runner's claim (its lease ran out and another took it).
    pub async fn renew_lease(&self, t: &task::Model, until: DateTime<Utc>) -> Result<bool> {
        Ok(task::Entity::update_many()
            .col_expr(task::Column::LeaseUntil, Expr::value(until))
            .filter(under_claim(t))
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    /// Replaces a request's sealed details.
    pub async fn set_details(&self, id: &str, details: Vec<u8>) -> Result<()> {
        request::Entity::update_many()
            .col_expr(request::Column::Details, Expr::value(details))
            .filter(request::Column::RequestId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records the ends of several tasks in one statement: for each, whether it was stored
    /// (false when the task is no longer under that run's claim: another replica took it
    /// over, and its result is the one that counts). One statement for a batch where a
    /// statement per task was most of a worker's writes (docs/scale.md, "Task results,
    /// written together").
    pub async fn finish_tasks(&self, ends: &[TaskEnd], now: DateTime<Utc>) -> Result<Vec<bool>> {
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let statement = finish_statement(self.db.get_database_backend(), ends, now);
        let stored: std::collections::HashSet<(String, String, String)> = self
            .db
            .query_all_raw(statement)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<String>("", "request_id")?,
                    row.try_get::<String>("", "service")?,
                    row.try_get::<String>("", "action")?,
                ))
            })
            .collect::<std::result::Result<_, sea_orm::DbErr>>()?;
        Ok(ends
            .iter()
            .map(|e| {
                stored.contains(&(
                    e.task.request_id.clone(),
                    e.task.service.clone(),
                    e.task.action.clone(),
                ))
            })
            .collect())
    }

    /// Which of the requests `ids` still have a task that has not finished.
    pub async fn with_unfinished_tasks<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        Ok(task::Entity::find()
            .select_only()
            .column(task::Column::RequestId)
            .distinct()
            .filter(task::Column::RequestId.is_in(ids))
            .filter(task::Column::Status.is_not_in(TaskStatus::FINISHED))
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// Completes an open request and, in the same transaction, stores what its closing
    /// tells: the message to the subject and the details without the address it went
    /// to. A request is never completed without its message (Account deletion, step 5:
    /// "You will receive an email confirming the deletion"), nor its message queued
    /// twice. False (nothing stored) when it was no longer open.
    pub async fn complete(
        &self,
        id: &str,
        package_expires_at: Option<DateTime<Utc>>,
        told: Told,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let close = Closing {
            status: RequestStatus::Completed,
            reason: None,
            package_expires_at,
            cancel_tasks: None,
        };
        self.close_with(id, close, told, now).await
    }

    /// Sets a new deadline with its reason and, in the same transaction, the message that
    /// tells the subject: an extension is never recorded without it. False (nothing
    /// stored) when the deadline in force is no longer `current` or the request closed
    /// (another call got there first).
    pub async fn extend(
        &self,
        id: &str,
        current: DateTime<Utc>,
        due: DateTime<Utc>,
        reason: &str,
        message: outbox::Model,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let updated = request::Entity::update_many()
            .col_expr(request::Column::DueAt, Expr::value(due))
            .col_expr(request::Column::ExtensionReason, Expr::value(reason))
            .col_expr(request::Column::UpdatedAt, Expr::value(now))
            .filter(request::Column::RequestId.eq(id))
            .filter(request::Column::DueAt.eq(current))
            .filter(request::Column::Status.is_in(RequestStatus::OPEN))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated == 0 {
            return Ok(false);
        }
        insert_message(&txn, Some(message)).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Refuses an open request: its tasks still to run are cancelled, it closes as
    /// DENIED with its reasons, and the message telling the subject (when an address is
    /// known) is queued and the address forgotten, all in one transaction. False when it
    /// was no longer open.
    pub async fn deny(
        &self,
        id: &str,
        reasons: &str,
        told: Told,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let close = Closing {
            status: RequestStatus::Denied,
            reason: Some(reasons.to_owned()),
            package_expires_at: None,
            cancel_tasks: Some("cancelled: request refused"),
        };
        self.close_with(id, close, told, now).await
    }

    /// When the last message of `topic` about a request was queued.
    pub async fn last_message_at(&self, id: &str, topic: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::RequestId.eq(id))
            .filter(outbox::Column::Topic.eq(topic))
            .order_by_desc(outbox::Column::CreatedAt)
            .one(&self.db)
            .await?
            .map(|m| m.created_at))
    }

    /// Cancels an open request: it closes as CANCELLED with its reason and its tasks
    /// still to run are rejected as cancelled, in one transaction. Apart, a stop between
    /// the two left an open request whose tasks had all ended, which the worker then
    /// closed as refused by every service and told the subject so. False (nothing
    /// stored) when it was no longer open.
    pub async fn cancel(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        let close = Closing {
            status: RequestStatus::Cancelled,
            reason: Some(reason.to_owned()),
            package_expires_at: None,
            cancel_tasks: Some("cancelled"),
        };
        self.close_with(id, close, Told::default(), now).await
    }

    /// Closes an open request as `close` says and stores what `told` holds with it, in
    /// one transaction; false (nothing stored) when it was no longer open.
    async fn close_with(
        &self,
        id: &str,
        close: Closing,
        told: Told,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let closed = close
            .update(id, told.forgotten, now)
            .exec(&txn)
            .await?
            .rows_affected;
        if closed == 0 {
            return Ok(false);
        }
        if let Some(why) = close.cancel_tasks {
            cancelling(id, why, now).exec(&txn).await?;
        }
        insert_message(&txn, told.message).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Requests matching a filter, soonest due first.
    pub async fn list(&self, f: &RequestFilter) -> Result<Vec<request::Model>> {
        let mut q = request::Entity::find()
            .order_by_asc(request::Column::DueAt)
            .order_by_asc(request::Column::RequestId);
        if let Some(s) = &f.status {
            q = q.filter(request::Column::Status.eq(*s));
        }
        if let Some(k) = &f.kind {
            q = q.filter(request::Column::Kind.eq(k.clone()));
        }
        if let Some(d) = f.due_before {
            q = q.filter(request::Column::DueAt.lt(d));
        }
        if let Some(now) = f.overdue_at {
            q = q
                .filter(request::Column::DueAt.lt(now))
                .filter(request::Column::Status.is_in(RequestStatus::OPEN));
        }
        if let Some((due, id)) = &f.after {
            q = q.filter(
                Condition::any().add(request::Column::DueAt.gt(*due)).add(
                    Condition::all()
                        .add(request::Column::DueAt.eq(*due))
                        .add(request::Column::RequestId.gt(id.clone())),
                ),
            );
        }
        Ok(q.limit(f.limit).all(&self.db).await?)
    }

    /// The queue: requests open (awaiting verification or in progress), and those of them
    /// past their deadline at `now`.
    pub async fn queue(&self, now: DateTime<Utc>) -> Result<QueueCounts> {
        let open =
            || request::Entity::find().filter(request::Column::Status.is_in(RequestStatus::OPEN));
        let overdue = open()
            .filter(request::Column::DueAt.lt(now))
            .count(&self.db)
            .await?;
        let open = open().count(&self.db).await?;
        Ok(QueueCounts { open, overdue })
    }

    /// Requests received in a time range (for the yearly report).
    pub async fn received_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<request::Model>> {
        Ok(request::Entity::find()
            .filter(request::Column::ReceivedAt.gte(from))
            .filter(request::Column::ReceivedAt.lt(to))
            .all(&self.db)
            .await?)
    }

    /// Drops a service's export chunks (before it is exported again).
    pub async fn clear_chunks(&self, id: &str, service: &str) -> Result<()> {
        package_chunk::Entity::delete_many()
            .filter(package_chunk::Column::RequestId.eq(id))
            .filter(package_chunk::Column::Service.eq(service))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Stores one sealed chunk.
    pub async fn insert_chunk(
        &self,
        id: &str,
        service: &str,
        seq: i32,
        chunk: Vec<u8>,
    ) -> Result<()> {
        package_chunk::Entity::insert(package_chunk::ActiveModel {
            request_id: Set(id.to_owned()),
            service: Set(service.to_owned()),
            seq: Set(seq),
            chunk: Set(chunk),
        })
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// The (service, seq) keys of a request's chunks, in order.
    pub async fn chunk_keys(&self, id: &str) -> Result<Vec<(String, i32)>> {
        Ok(package_chunk::Entity::find()
            .select_only()
            .column(package_chunk::Column::Service)
            .column(package_chunk::Column::Seq)
            .filter(package_chunk::Column::RequestId.eq(id))
            .order_by_asc(package_chunk::Column::Service)
            .order_by_asc(package_chunk::Column::Seq)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// One sealed chunk.
    pub async fn chunk(&self, id: &str, service: &str, seq: i32) -> Result<Option<Vec<u8>>> {
        Ok(
            package_chunk::Entity::find_by_id((id.to_owned(), service.to_owned(), seq))
                .one(&self.db)
                .await?
                .map(|c| c.chunk),
        )
    }

    /// Deletes the chunks of packages that expired.
    pub async fn delete_expired_packages(&self, now: DateTime<Utc>) -> Result<u64> {
        let expired: Vec<String> = request::Entity::find()
            .select_only()
            .column(request::Column::RequestId)
            .filter(request::Column::PackageExpiresAt.lt(now))
            .into_tuple()
            .all(&self.db)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let deleted = package_chunk::Entity::delete_many()
            .filter(package_chunk::Column::RequestId.is_in(expired.clone()))
            .exec(&self.db)
            .await?
            .rows_affected;
        request::Entity::update_many()
            .col_expr(
                request::Column::PackageExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(request::Column::RequestId.is_in(expired))
            .exec(&self.db)
            .await?;
        Ok(deleted)
    }

    /// Whether a completed erasure (or CCPA deletion) of the subject exists.
    pub async fn subject_erased(&self, subject: &str) -> Result<bool> {
        Ok(request::Entity::find()
            .filter(request::Column::SubjectId.eq(subject))
            .filter(request::Column::Status.eq(RequestStatus::Completed))
            .filter(request::Column::Kind.is_in(erasing_kinds()))
            .count(&self.db)
            .await?
            > 0)
    }

    /// Crypto-shreds what the outbox holds for erased subjects: the mailbox keys of all
    /// their messages (breach notices' too) are destroyed in the key store, and their
    /// messages still waiting (but the erasure's own, owed to them by the policy) are
    /// dropped with their address.
    /// Idempotent: run for the one subject when their erasure completes (`only`: its cost
    /// does not grow with the erasures before it) and for all at every housekeeping, so a
    /// crash in between loses nothing.
    pub async fn shred_erased(&self, only: Option<&str>) -> Result<u64> {
        use sea_orm::Statement;
        let backend = self.db.get_database_backend();
        let [erasure, ccpa_delete] = erasing_kinds();
        let completed = RequestStatus::Completed.to_value();
        let (pending, dropped) = (
            MessageStatus::Pending.to_value(),
            MessageStatus::Dropped.to_value(),
        );
        // Constants only (kind names and the states' stored strings): nothing from a caller
        // reaches this SQL.
        // The one subject is bound as `$1` (both backends number it so, and reuse it).
        let (one, values) = match only {
            Some(subject) => (" AND e.subject_id = $1", vec![subject.into()]),
            None => ("", Vec::new()),
        };
        let erased = format!(
            "SELECT e.subject_id FROM requests e WHERE e.status = '{completed}' \
             AND e.kind IN ('{erasure}', '{ccpa_delete}') AND e.subject_id IS NOT NULL{one}"
        );
        let statement = |sql: String| Statement::from_sql_and_values(backend, sql, values.clone());
        // Breach notices' messages too: a notice is never the erasure's own.
        let notices = format!("SELECT n.notice_id FROM notices n WHERE n.subject_id IN ({erased})");
        let keyed = format!(
            "SELECT o.message_id FROM outbox o WHERE o.file_key IS NOT NULL AND (o.request_id IN \
             (SELECT r.request_id FROM requests r WHERE r.subject_id IN ({erased})) \
             OR o.notice_id IN ({notices}))"
        );
        let messages: Vec<String> = self
            .db
            .query_all_raw(statement(keyed))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?;
        let mut shredded = 0;
        for chunk in messages.chunks(500) {
            for id in chunk {
                self.destroy_key(KeyOf::Message(id)).await?;
            }
            // After the keys: a crash in between finds them again next time.
            shredded += outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::FileKey,
                    Expr::value(Option::<Vec<u8>>::None),
                )
                .filter(outbox::Column::MessageId.is_in(chunk.iter().cloned()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        let waiting = format!(
            "UPDATE outbox SET status = '{dropped}', recipient = NULL, file_key = NULL, \
             body = substr(body, 1, 0) \
             WHERE status = '{pending}' AND request_id IN (SELECT r.request_id FROM requests r \
             WHERE r.kind NOT IN ('{erasure}', '{ccpa_delete}') AND r.subject_id IN ({erased}))"
        );
        shredded += self
            .db
            .execute_raw(statement(waiting))
            .await?
            .rows_affected();
        let waiting_notices = format!(
            "UPDATE outbox SET status = '{dropped}', recipient = NULL, file_key = NULL, \
             body = substr(body, 1, 0) WHERE status = '{pending}' AND notice_id IN ({notices})"
        );
        shredded += self
            .db
            .execute_raw(statement(waiting_notices))
            .await?
            .rows_affected();
        Ok(shredded)
    }

    /// Open requests of erased subjects, or of the erased subject `only` (their contact
    /// address must go too).
    pub async fn open_requests_of_erased(&self, only: Option<&str>) -> Result<Vec<request::Model>> {
        let mut erased = request::Entity::find()
            .select_only()
            .column(request::Column::SubjectId)
            .filter(request::Column::Status.eq(RequestStatus::Completed))
            .filter(request::Column::Kind.is_in(erasing_kinds()))
            .filter(request::Column::SubjectId.is_not_null());
        if let Some(subject) = only {
            erased = erased.filter(request::Column::SubjectId.eq(subject));
        }
        let erased: Vec<Option<String>> = erased.into_tuple().all(&self.db).await?;
        if erased.is_empty() {
            return Ok(Vec::new());
        }
        Ok(request::Entity::find()
            .filter(request::Column::SubjectId.is_in(erased.into_iter().flatten()))
            .filter(request::Column::Status.is_in(RequestStatus::OPEN))
            .all(&self.db)
            .await?)
    }
}

/// A request, who submitted it and its tasks, inside `txn` (every path that files a
/// request stores the three together).
async fn insert_request_in(
    txn: &sea_orm::DatabaseTransaction,
    row: request::Model,
    tasks: Vec<task::Model>,
    submitted_by: Option<String>,
) -> Result<()> {
    let request_id = row.request_id.clone();
    request::Entity::insert(row.into_active_model())
        .exec(txn)
        .await?;
    request_access::Entity::insert(
        request_access::Model {
            request_id,
            submitted_by,
            download_token_hash: None,
            download_token_used_at: None,
        }
        .into_active_model(),
    )
    .exec(txn)
    .await?;
    if !tasks.is_empty() {
        task::Entity::insert_many(tasks.into_iter().map(IntoActiveModel::into_active_model))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Stores `message`, if any, in the transaction of the change it tells of.
async fn insert_message(
    txn: &sea_orm::DatabaseTransaction,
    message: Option<outbox::Model>,
) -> Result<()> {
    if let Some(message) = message {
        outbox::Entity::insert(message.into_active_model())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// What a request's closing stores with it: the message telling the subject, and the
/// request's details sealed again without the address that message needed.
#[derive(Debug, Default)]
pub struct Told {
    /// The message to the subject; none when no address is known.
    pub message: Option<outbox::Model>,
    /// The details without the contact address; none when they hold none.
    pub forgotten: Option<Vec<u8>>,
}

/// How a request closes.
struct Closing {
    status: RequestStatus,
    reason: Option<String>,
    package_expires_at: Option<DateTime<Utc>>,
    /// Its tasks still to run are rejected with this error (none: they are left).
    cancel_tasks: Option<&'static str>,
}

impl Closing {
    /// The update closing an open request (only from IN_PROGRESS or
    /// VERIFICATION_REQUIRED), with its details replaced when `details` is given.
    fn update(
        &self,
        id: &str,
        details: Option<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> sea_orm::UpdateMany<request::Entity> {
        let mut update = request::Entity::update_many()
            .col_expr(request::Column::Status, Expr::value(self.status))
            .col_expr(
                request::Column::OutcomeReason,
                Expr::value(self.reason.clone()),
            )
            .col_expr(request::Column::ClosedAt, Expr::value(now))
            .col_expr(
                request::Column::PackageExpiresAt,
                Expr::value(self.package_expires_at),
            )
            .col_expr(request::Column::UpdatedAt, Expr::value(now));
        if let Some(details) = details {
            update = update.col_expr(request::Column::Details, Expr::value(details));
        }
        update
            .filter(request::Column::RequestId.eq(id))
            .filter(request::Column::Status.is_in(RequestStatus::OPEN))
    }
}

/// How a claimed task ended, to be recorded ([`Store::finish_tasks`]).
#[derive(Debug, Clone)]
pub struct TaskEnd {
    /// The task as claimed (its key and the attempt its claim counted).
    pub task: task::Model,
    /// Done, rejected, or failed (to run again at `next_attempt_at`).
    pub status: TaskStatus,
    /// What a done task answered.
    pub result: Option<String>,
    /// Why it was refused or failed.
    pub error: Option<String>,
    /// When a failed task is due again.
    pub next_attempt_at: DateTime<Utc>,
}

/// The columns of one ended task in [`finish_statement`]'s list, in order.
const ENDED_COLUMNS: [&str; 9] = [
    "request_id",
    "service",
    "action",
    "attempts",
    "status",
    "result",
    "last_error",
    "next_attempt_at",
    "done_at",
];

/// `UPDATE … FROM` a list of the ended tasks, each row taken only while still under the
/// claim that ran it (running, and at the attempt that claim counted), as
/// [`under_claim`] does for one. The same text runs on both databases but for the
/// placeholders; the values are bound as the entity's own writes bind them, so a time is
/// stored as any other of the column's.
fn finish_statement(
    backend: sea_orm::DbBackend,
    ends: &[TaskEnd],
    now: DateTime<Utc>,
) -> sea_orm::Statement {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(ends.len() * ENDED_COLUMNS.len() + 1);
    // The placeholder of the next value pushed.
    let placeholder = |values: &[sea_orm::Value]| match backend {
        sea_orm::DbBackend::Postgres => format!("${}", values.len() + 1),
        _ => "?".to_owned(),
    };
    let mut rows = Vec::with_capacity(ends.len());
    for e in ends {
        let mut row = Vec::with_capacity(ENDED_COLUMNS.len());
        for value in [
            sea_orm::Value::from(e.task.request_id.clone()),
            e.task.service.clone().into(),
            e.task.action.clone().into(),
            e.task.attempts.into(),
            e.status.to_value().into(),
            e.result.clone().into(),
            e.error.clone().into(),
            e.next_attempt_at.into(),
            e.status.is_finished().then_some(now).into(),
        ] {
            row.push(placeholder(&values));
            values.push(value);
        }
        rows.push(format!("({})", row.join(", ")));
    }
    let updated_at = placeholder(&values);
    values.push(now.into());
    let sql = format!(
        "WITH ended ({columns}) AS (VALUES {rows}) \
         UPDATE tasks SET status = ended.status, result = ended.result, \
         last_error = ended.last_error, next_attempt_at = ended.next_attempt_at, \
         lease_until = NULL, done_at = ended.done_at, updated_at = {updated_at} \
         FROM ended \
         WHERE tasks.request_id = ended.request_id AND tasks.service = ended.service \
         AND tasks.action = ended.action AND tasks.attempts = ended.attempts \
         AND tasks.{RUNNING_SQL} \
         RETURNING tasks.request_id, tasks.service, tasks.action",
        columns = ENDED_COLUMNS.join(", "),
        rows = rows.join(", "),
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// The update rejecting a request's tasks still to run, with `why` as their error.
fn cancelling(id: &str, why: &str, now: DateTime<Utc>) -> sea_orm::UpdateMany<task::Entity> {
    task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(TaskStatus::Rejected))
        .col_expr(task::Column::LastError, Expr::value(why))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(task::Column::RequestId.eq(id))
        .filter(task::Column::Status.is_in(TaskStatus::TO_RUN))
}

/// Task `t` still running under the claim that produced it: the claim's attempt number
/// fences a runner whose lease ran out and was taken over by another replica.
fn under_claim(t: &task::Model) -> Condition {
    Condition::all()
        .add(task::Column::RequestId.eq(t.request_id.clone()))
        .add(task::Column::Service.eq(t.service.clone()))
        .add(task::Column::Action.eq(t.action.clone()))
        .add(task::Column::Status.eq(TaskStatus::Running))
        .add(task::Column::Attempts.eq(t.attempts))
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use super::*;

    #[test]
    fn the_claims_literal_states_are_the_tasks_states() {
        let states: Vec<String> = TaskStatus::TO_RUN
            .iter()
            .map(|s| format!("'{}'", s.to_value()))
            .collect();
        assert_eq!(TO_RUN_SQL, format!("status IN ({})", states.join(", ")));
        assert_eq!(
            RUNNING_SQL,
            format!("status = '{}'", TaskStatus::Running.to_value())
        );
    }
}
