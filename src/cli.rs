//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// pdm — the personal-data mesh.
#[derive(Debug, Parser)]
#[command(name = "pdm", version, about)]
pub struct Cli {
    /// Settings file (TOML). Default: $PDM_CONFIG, else ./pdm.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run services: `pdm serve all` or `pdm serve identity,consent`.
    Serve(ServeArgs),
    /// List the services of the mesh and whether they are built.
    Services,
    /// Settings: `pdm config check` parses and checks every section, as `pdm serve` does.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Impact assessments: the DPO's DPIA register, and the reviews overdue (DPIAs, TIAs).
    #[command(subcommand)]
    Assessments(Box<crate::admin::assessments::AssessmentsCommand>),
    /// The access trail: verify every service's hash chain, list a subject's accesses.
    #[command(subcommand)]
    Audit(crate::admin::audit::AuditCommand),
    /// Certificates for mutual TLS: `pdm certs init` writes a development PKI.
    #[command(subcommand)]
    Certs(crate::admin::certs::CertsCommand),
    /// Consent: purposes, a subject's state and history (talks to the consent service).
    #[command(subcommand)]
    Consent(crate::admin::consent::ConsentCommand),
    /// Incidents: the breach register, its authority clocks, notifications, the DPO.
    #[command(subcommand)]
    Incidents(Box<crate::admin::incidents::IncidentsCommand>),
    /// Keys: the key stores of subjects' data keys: status, rotate, backup, restore.
    #[command(subcommand)]
    Keys(crate::admin::keys::KeysCommand),
    /// Retention: policies, legal holds, purge runs, a purge now, a subject's schedule.
    #[command(subcommand)]
    Retention(crate::admin::retention::RetentionCommand),
    /// Rights: the queue of data-subject requests, one request, extend, download, report.
    #[command(subcommand)]
    Rights(crate::admin::rights::RightsCommand),
    /// Transfers: seed the register, recipients, mechanisms, expiring, the register.
    #[command(subcommand)]
    Transfers(crate::admin::transfers::TransfersCommand),
    /// The web front: the console's operators (`pdm web operator add|list|disable`).
    #[command(subcommand)]
    Web(crate::admin::web::WebCommand),
}

/// `pdm config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Checks the settings (file, then `PDM__…` variables) of every section and reports
    /// every problem, with its key; exits 78 if there is one.
    Check,
}

/// `pdm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// `all`, or a comma-separated list of services.
    #[arg(default_value = "all")]
    pub services: String,
}
