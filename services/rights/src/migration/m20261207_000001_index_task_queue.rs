//! Issue 19: the task queue indexed in the order a worker claims from it. Before, a claim
//! selected the due tasks and the lapsed leases with one OR over `tasks_due` (status, next
//! attempt) and sorted every due task to take the first few: at 100,000 waiting tasks a
//! claim took 103 ms on SQLite and on PostgreSQL (an external sort on disk there). Now:
//! - `tasks_to_run`: the tasks still to run, children's requests first, then the longest
//!   due, a request's tasks side by side (the claim's order, read from the front);
//! - `tasks_leased`: the running tasks by the end of their lease (read from the front for
//!   the lapsed ones).
//!
//! Both partial, so the finished tasks (most of the table) are in neither; the claim names
//! the same states as literals (`store::TO_RUN_SQL`, `store::RUNNING_SQL`), as the planners
//! need to use them. `tasks_due` goes: left in place, SQLite's planner preferred it and
//! sorted again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// The same statements on SQLite and PostgreSQL: sea-query's index builder has no partial
// index on both.
const UP: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS tasks_to_run \
     ON tasks (priority DESC, next_attempt_at, request_id) \
     WHERE status IN ('pending', 'failed')",
    "CREATE INDEX IF NOT EXISTS tasks_leased ON tasks (lease_until) WHERE status = 'running'",
    "DROP INDEX IF EXISTS tasks_due",
];
const DOWN: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS tasks_due ON tasks (status, next_attempt_at)",
    "DROP INDEX IF EXISTS tasks_leased",
    "DROP INDEX IF EXISTS tasks_to_run",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        manager
            .get_connection()
            .execute_unprepared(statement)
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &DOWN).await
    }
}
