//! `pdm retention …`: the policies in force and their versions, legal holds, purge runs,
//! a purge now (with a progress bar from the RunPurge stream), a retry, and a subject's
//! schedule.

use std::io::{IsTerminal, Write};

use anyhow::Context as _;
use clap::Subcommand;
use pdm_proto::{
    common::v1::LegalBasis,
    retention::v1::{
        self as pb, GetScheduleRequest, ListLegalHoldsRequest, ListPoliciesRequest,
        ListPolicyVersionsRequest, ListPurgeRunsRequest, RetryPurgeRequest, RunPurgeRequest,
        RunStatus, retention_service_client::RetentionServiceClient,
    },
    subject::v1::RetentionTrigger,
};
use pdm_runtime::{Settings, convert::from_timestamp};

use super::{channel, print_table};

/// `pdm retention` subcommands.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// The policies in force, by category.
    Policies,
    /// Every version of one category's policy, newest first.
    Versions {
        /// Category, e.g. billing.record.
        category: String,
    },
    /// Legal holds (active ones unless --all).
    Holds {
        /// Released holds too.
        #[arg(long)]
        all: bool,
    },
    /// Recent purge runs, newest first.
    Runs {
        /// How many (1-100).
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
    /// Run a purge now across the mesh, showing each service as it answers.
    Purge {
        /// Count what would be purged; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who asks (recorded with the run).
        #[arg(long, env = "USER", default_value = "pdm-cli")]
        by: String,
    },
    /// Ask again the services a partial run is missing.
    Retry {
        /// Run id.
        run_id: String,
    },
    /// A subject's schedule: per category, the rule and, when known, the deletion date.
    Schedule {
        /// Subject id.
        subject_id: String,
    },
}

fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

fn trigger(raw: i32) -> String {
    short(
        RetentionTrigger::try_from(raw)
            .unwrap_or_default()
            .as_str_name(),
        "RETENTION_TRIGGER_",
    )
}

fn basis(raw: i32) -> String {
    short(
        LegalBasis::try_from(raw).unwrap_or_default().as_str_name(),
        "LEGAL_BASIS_",
    )
}

fn run_status(raw: i32) -> String {
    short(
        RunStatus::try_from(raw).unwrap_or_default().as_str_name(),
        "RUN_STATUS_",
    )
}

fn period(p: Option<pb::Period>) -> String {
    let p = p.unwrap_or_default();
    let parts: Vec<String> = [(p.years, "y"), (p.months, "m"), (p.days, "d")]
        .into_iter()
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" ")
    }
}

fn date(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| from_timestamp(&t))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

fn time(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| from_timestamp(&t))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn totals(run: &pb::PurgeRun) -> (u64, u64) {
    run.services
        .iter()
        .flat_map(|s| &s.results)
        .fold((0, 0), |(p, h), r| (p + r.purged, h + r.held))
}

fn policy_rows(policies: Vec<pb::Policy>) -> Vec<Vec<String>> {
    policies
        .into_iter()
        .map(|p| {
            vec![
                p.category,
                trigger(p.trigger),
                period(p.period),
                basis(p.legal_basis),
                p.version.to_string(),
                p.changed_by,
                p.description,
            ]
        })
        .collect()
}

const POLICY_HEADERS: [&str; 7] = [
    "CATEGORY", "TRIGGER", "PERIOD", "BASIS", "VERSION", "BY", "RULE",
];

/// Runs a retention command.
pub async fn run(settings: &Settings, command: RetentionCommand) -> anyhow::Result<()> {
    let mut client = RetentionServiceClient::new(channel(settings, "retention")?);
    match command {
        RetentionCommand::Policies => {
            let policies = client
                .list_policies(ListPoliciesRequest {})
                .await?
                .into_inner()
                .policies;
            print_table(&POLICY_HEADERS, &policy_rows(policies));
        }
        RetentionCommand::Versions { category } => {
            let versions = client
                .list_policy_versions(ListPolicyVersionsRequest { category })
                .await?
                .into_inner()
                .versions;
            print_table(&POLICY_HEADERS, &policy_rows(versions));
        }
        RetentionCommand::Holds { all } => {
            let holds = client
                .list_legal_holds(ListLegalHoldsRequest {
                    include_released: all,
                    subject_id: String::new(),
                })
                .await?
                .into_inner()
                .holds;
            let rows = holds
                .into_iter()
                .map(|h| {
                    vec![
                        h.hold_id,
                        if h.subject_id.is_empty() {
                            "(every subject)".into()
                        } else {
                            h.subject_id
                        },
                        if h.category.is_empty() {
                            "(every category)".into()
                        } else {
                            h.category
                        },
                        h.reference,
                        h.placed_by,
                        date(h.placed_at),
                        date(h.released_at),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "HOLD",
                    "SUBJECT",
                    "CATEGORY",
                    "REFERENCE",
                    "PLACED BY",
                    "PLACED",
                    "RELEASED",
                ],
                &rows,
            );
        }
        RetentionCommand::Runs { limit } => {
            let runs = client
                .list_purge_runs(ListPurgeRunsRequest {
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner()
                .runs;
            let rows = runs
                .into_iter()
                .map(|r| {
                    let (purged, held) = totals(&r);
                    let answered = r.services.iter().filter(|s| s.ok).count();
                    vec![
                        r.run_id.clone(),
                        run_status(r.status),
                        if r.dry_run { "dry" } else { "" }.to_owned(),
                        time(r.started_at),
                        format!("{answered}/{}", r.services.len()),
                        purged.to_string(),
                        held.to_string(),
                        r.triggered_by,
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "RUN", "STATUS", "DRY", "STARTED", "SERVICES", "PURGED", "HELD", "BY",
                ],
                &rows,
            );
        }
        RetentionCommand::Purge { dry_run, by } => {
            let mut stream = client
                .run_purge(RunPurgeRequest {
                    dry_run,
                    triggered_by: by,
                })
                .await
                .context("starting the purge")?
                .into_inner();
            let mut last = None;
            while let Some(step) = stream.message().await? {
                if let Some(service) = &step.service {
                    progress(service, step.done, step.total, dry_run);
                }
                last = step.run;
            }
            finish(last)?;
        }
        RetentionCommand::Retry { run_id } => {
            let mut stream = client
                .retry_purge(RetryPurgeRequest { run_id })
                .await
                .context("retrying the run")?
                .into_inner();
            let mut last = None;
            while let Some(step) = stream.message().await? {
                if let Some(service) = &step.service {
                    let dry = step.run.as_ref().is_some_and(|r| r.dry_run);
                    progress(service, step.done, step.total, dry);
                }
                last = step.run;
            }
            finish(last)?;
        }
        RetentionCommand::Schedule { subject_id } => {
            let entries = client
                .get_schedule(GetScheduleRequest { subject_id })
                .await?
                .into_inner()
                .entries;
            let rows = entries
                .into_iter()
                .map(|e| {
                    vec![
                        e.category,
                        trigger(e.trigger),
                        period(e.period),
                        date(e.triggered_at),
                        date(e.delete_after),
                        e.hold_ids.join(" "),
                        e.rule,
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "CATEGORY",
                    "TRIGGER",
                    "PERIOD",
                    "TRIGGERED",
                    "DELETE AFTER",
                    "HOLDS",
                    "RULE",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

/// A text progress bar: `[#########---------------] 1/4`.
fn bar(done: i32, total: i32) -> String {
    const WIDTH: i32 = 24;
    let filled = if total > 0 {
        (done.clamp(0, total) * WIDTH) / total
    } else {
        WIDTH
    };
    let filled = usize::try_from(filled).unwrap_or(0);
    let empty = usize::try_from(WIDTH).unwrap_or(0).saturating_sub(filled);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(empty)
    )
}

/// One line per service as it answers; on a terminal the bar is redrawn in place below.
fn progress(service: &pb::ServiceResult, done: i32, total: i32, dry_run: bool) {
    let verb = if dry_run { "would be purged" } else { "purged" };
    let line = if service.ok {
        let purged: u64 = service.results.iter().map(|r| r.purged).sum();
        let held: u64 = service.results.iter().map(|r| r.held).sum();
        format!(
            "{}: ok, {purged} {verb}, {held} held ({} ms)",
            service.service, service.duration_ms
        )
    } else {
        format!("{}: FAILED: {}", service.service, service.error)
    };
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        let _ = write!(out, "\r\x1b[2K{line}\n{}", bar(done, total));
        if done == total {
            let _ = writeln!(out);
        }
    } else {
        let _ = writeln!(out, "{} {line}", bar(done, total));
    }
    let _ = out.flush();
}

/// The summary of a finished run; an error when it is partial (exit status 1).
fn finish(run: Option<pb::PurgeRun>) -> anyhow::Result<()> {
    let run = run.context("the run ended without its result")?;
    let (purged, held) = totals(&run);
    let verb = if run.dry_run {
        "would be purged"
    } else {
        "purged"
    };
    println!(
        "run {} {}{}: {purged} {verb}, {held} held",
        run.run_id,
        run_status(run.status),
        if run.dry_run { " (dry run)" } else { "" },
    );
    let rows: Vec<Vec<String>> = run
        .services
        .iter()
        .flat_map(|s| {
            s.results.iter().map(|r| {
                vec![
                    s.service.clone(),
                    r.category.clone(),
                    r.purged.to_string(),
                    r.held.to_string(),
                    r.hold_ids.join(" "),
                ]
            })
        })
        .collect();
    if !rows.is_empty() {
        print_table(&["SERVICE", "CATEGORY", "PURGED", "HELD", "HOLDS"], &rows);
    }
    if run.status == RunStatus::Partial as i32 {
        let missing: Vec<&str> = run
            .services
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.service.as_str())
            .collect();
        anyhow::bail!(
            "run {} is partial: {} did not answer; `pdm retention retry {}` asks again (the scheduler does too)",
            run.run_id,
            missing.join(", "),
            run.run_id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_as_services_answer() {
        assert_eq!(bar(0, 4), format!("[{}] 0/4", "-".repeat(24)));
        assert_eq!(
            bar(1, 4),
            format!("[{}{}] 1/4", "#".repeat(6), "-".repeat(18))
        );
        assert_eq!(bar(4, 4), format!("[{}] 4/4", "#".repeat(24)));
        assert_eq!(bar(0, 0), format!("[{}] 0/0", "#".repeat(24)));
    }

    #[test]
    fn periods_are_short() {
        let p = |years, months, days| {
            Some(pb::Period {
                years,
                months,
                days,
            })
        };
        assert_eq!(period(p(8, 0, 0)), "8y");
        assert_eq!(period(p(0, 13, 0)), "13m");
        assert_eq!(period(p(1, 2, 3)), "1y 2m 3d");
        assert_eq!(period(None), "0");
    }
}
