//! Purge runs and what each service did in them.

use chrono::{DateTime, Utc};
use pdm_proto::retention::v1::RunStatus;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};

use super::{
    Store,
    entities::{purge_run, service_result},
};
use crate::{domain::run::truncate, error::Result};

/// Longest error text kept for a service.
const MAX_ERROR: usize = 500;

/// A rule as sent, kept with the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// Category.
    pub category: String,
    /// `RetentionTrigger` name.
    pub trigger: String,
    /// Cutoff.
    pub cutoff: DateTime<Utc>,
}

/// What a service did to one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    /// Category.
    pub category: String,
    /// Purged, or would be on a dry run.
    pub purged: u64,
    /// Expired but held.
    pub held: u64,
    /// Holds that blocked records.
    pub hold_ids: Vec<String>,
}

/// The outcome of one call to one service.
#[derive(Debug, Clone)]
pub struct ServiceOutcome {
    /// Service name.
    pub service: String,
    /// Per category, when it answered; why not (no personal data) otherwise.
    pub result: std::result::Result<Vec<CategoryCount>, String>,
    /// How long the call took.
    pub duration_ms: i64,
}

/// A run with its per-service results, in the run's service order.
#[derive(Debug, Clone)]
pub struct RunWithResults {
    /// The run.
    pub run: purge_run::Model,
    /// Per service.
    pub services: Vec<service_result::Model>,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Why a service that was never answered is not.
pub const INTERRUPTED: &str = "the run was interrupted before the service answered";

impl Store {
    /// Starts a run: the run, RUNNING, and a pending result per service.
    pub async fn create_run(
        &self,
        run: purge_run::Model,
        services: &[String],
    ) -> Result<RunWithResults> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let run = purge_run::Entity::insert(run.into_active_model())
            .exec_with_returning(&txn)
            .await?;
        let mut rows = Vec::with_capacity(services.len());
        for (position, service) in services.iter().enumerate() {
            let row = service_result::Model {
                run_id: run.run_id.clone(),
                service: service.clone(),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                ok: false,
                results: "[]".to_owned(),
                error: String::new(),
                duration_ms: 0,
                attempts: 0,
            };
            rows.push(
                service_result::Entity::insert(row.into_active_model())
                    .exec_with_returning(&txn)
                    .await?,
            );
        }
        txn.commit().await?;
        Ok(RunWithResults {
            run,
            services: rows,
        })
    }

    /// A run and its results.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunWithResults>> {
        let Some(run) = purge_run::Entity::find_by_id(run_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let services = service_result::Entity::find()
            .filter(service_result::Column::RunId.eq(run_id))
            .order_by_asc(service_result::Column::Position)
            .all(&self.db)
            .await?;
        Ok(Some(RunWithResults { run, services }))
    }

    /// A page of runs, newest first, older than `before` when given.
    pub async fn runs(&self, before: Option<&str>, limit: u64) -> Result<Vec<RunWithResults>> {
        let mut q = purge_run::Entity::find().order_by_desc(purge_run::Column::RunId);
        if let Some(before) = before {
            q = q.filter(purge_run::Column::RunId.lt(before));
        }
        let runs = q.limit(limit).all(&self.db).await?;
        let ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
        let mut results = service_result::Entity::find()
            .filter(service_result::Column::RunId.is_in(ids))
            .order_by_asc(service_result::Column::Position)
            .all(&self.db)
            .await?;
        Ok(runs
            .into_iter()
            .map(|run| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    results.drain(..).partition(|r| r.run_id == run.run_id);
                results = rest;
                RunWithResults {
                    run,
                    services: mine,
                }
            })
            .collect())
    }

    /// The newest run, real or dry.
    pub async fn latest_run(&self, dry_run: bool) -> Result<Option<purge_run::Model>> {
        Ok(purge_run::Entity::find()
            .filter(purge_run::Column::DryRun.eq(dry_run))
            .order_by_desc(purge_run::Column::RunId)
            .one(&self.db)
            .await?)
    }

    /// Records one service's answer (or failure) and counts the attempt.
    pub async fn record_outcome(&self, run_id: &str, outcome: &ServiceOutcome) -> Result<()> {
        let (ok, results, error) = match &outcome.result {
            Ok(counts) => (true, json(counts), String::new()),
            Err(error) => (false, "[]".to_owned(), truncate(error, MAX_ERROR)),
        };
        service_result::Entity::update_many()
            .col_expr(service_result::Column::Ok, Expr::value(ok))
            .col_expr(service_result::Column::Results, Expr::value(results))
            .col_expr(service_result::Column::Error, Expr::value(error))
            .col_expr(
                service_result::Column::DurationMs,
                Expr::value(outcome.duration_ms),
            )
            .col_expr(
                service_result::Column::Attempts,
                Expr::col(service_result::Column::Attempts).add(1),
            )
            .filter(service_result::Column::RunId.eq(run_id))
            .filter(service_result::Column::Service.eq(outcome.service.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Marks a run RUNNING again for a retry, with the rules and holds of this attempt.
    pub async fn restart_run(
        &self,
        run_id: &str,
        rules: &[RuleRecord],
        hold_ids: &[String],
    ) -> Result<()> {
        purge_run::Entity::update_many()
            .set(purge_run::ActiveModel {
                status: Set(RunStatus::Running.as_str_name().to_owned()),
                rules: Set(json(&rules)),
                hold_ids: Set(json(&hold_ids)),
                ..Default::default()
            })
            .filter(purge_run::Column::RunId.eq(run_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Ends an attempt: the run's status and when it ended.
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        purge_run::Entity::update_many()
            .set(purge_run::ActiveModel {
                status: Set(status.as_str_name().to_owned()),
                finished_at: Set(Some(at)),
                ..Default::default()
            })
            .filter(purge_run::Column::RunId.eq(run_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Runs left RUNNING by a holder that died become PARTIAL, their unanswered
    /// services failed, so they are retried. Only called while holding the lease, when
    /// no other run can be in progress. Returns the runs recovered.
    pub async fn recover_interrupted(&self, at: DateTime<Utc>) -> Result<Vec<String>> {
        let stale: Vec<String> = purge_run::Entity::find()
            .select_only()
            .column(purge_run::Column::RunId)
            .filter(purge_run::Column::Status.eq(RunStatus::Running.as_str_name()))
            .into_tuple()
            .all(&self.db)
            .await?;
        if stale.is_empty() {
            return Ok(stale);
        }
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        service_result::Entity::update_many()
            .col_expr(service_result::Column::Error, Expr::value(INTERRUPTED))
            .filter(service_result::Column::RunId.is_in(stale.clone()))
            .filter(service_result::Column::Ok.eq(false))
            .filter(service_result::Column::Error.eq(""))
            .exec(&txn)
            .await?;
        purge_run::Entity::update_many()
            .set(purge_run::ActiveModel {
                status: Set(RunStatus::Partial.as_str_name().to_owned()),
                finished_at: Set(Some(at)),
                ..Default::default()
            })
            .filter(purge_run::Column::RunId.is_in(stale.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(stale)
    }
}
