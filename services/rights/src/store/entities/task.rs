//! The `tasks` table: one per (request, service, action).

use sea_orm::entity::prelude::*;

use crate::store::status::TaskStatus;

/// A task of a request.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    /// Request.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Service.
    #[sea_orm(primary_key, auto_increment = false)]
    pub service: String,
    /// Action name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub action: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// The request's priority.
    pub priority: i32,
    /// Attempts so far.
    pub attempts: i32,
    /// Not before.
    pub next_attempt_at: ChronoDateTimeUtc,
    /// A running task whose lease passed is taken over (its runner crashed).
    pub lease_until: Option<ChronoDateTimeUtc>,
    /// The replica running it (see `worker::replica_id`).
    pub lease_owner: Option<String>,
    /// Last error (no personal data).
    pub last_error: Option<String>,
    /// JSON result (receipt, export summary, schedule).
    pub result: Option<String>,
    /// Finished.
    pub done_at: Option<ChronoDateTimeUtc>,
    /// Last change.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// A task of `request_id` for `service` to do `action`, never run, due at `now`.
    pub fn pending(
        request_id: &str,
        service: String,
        action: &str,
        priority: i32,
        now: ChronoDateTimeUtc,
    ) -> Self {
        Self {
            request_id: request_id.to_owned(),
            service,
            action: action.to_owned(),
            status: TaskStatus::Pending,
            priority,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            lease_owner: None,
            last_error: None,
            result: None,
            done_at: None,
            updated_at: now,
        }
    }
}
