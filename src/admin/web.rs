//! `pdm web operator …`: the privacy team's console accounts, on the web front's own
//! database (the web need not run).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use clap::Subcommand;
use pdm_runtime::Settings;

use super::print_table;

/// The variable a script may hand the password in.
pub const PASSWORD_VAR: &str = "PDM_OPERATOR_PASSWORD";

/// `pdm web` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// The console's operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

/// `pdm web operator` subcommands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Adds an operator: the password from $PDM_OPERATOR_PASSWORD, else read from stdin
    /// (asked for, not echoed, on a terminal); prints the TOTP provisioning URI once.
    Add {
        /// Account name (lowercase letters, digits, '.', '-', '_').
        name: String,
    },
    /// Lists the operators.
    List,
    /// Disables an operator and ends their sessions.
    Disable {
        /// Account name.
        name: String,
    },
}

/// Runs a `pdm web` command.
pub async fn run(settings: &Settings, command: WebCommand) -> anyhow::Result<()> {
    let WebCommand::Operator(command) = command;
    let operators = pdm_web::operators_admin::open(settings).await?;
    match command {
        OperatorCommand::Add { name } => {
            let password = password()?;
            let (kek, _) = pdm_runtime::keys::load_kek(settings).context("the KEK")?;
            let keyring = pdm_crypto::Keyring::new(&kek);
            let uri = pdm_web::operators_admin::add(
                &operators,
                &keyring,
                &name,
                &password,
                chrono::Utc::now(),
            )
            .await?;
            println!("operator {name} added; add this to an authenticator app now (shown once):");
            println!("{uri}");
        }
        OperatorCommand::List => {
            let rows: Vec<Vec<String>> = pdm_web::operators_admin::list(&operators)
                .await?
                .into_iter()
                .map(|o| {
                    vec![
                        o.name,
                        chrono::DateTime::from_timestamp(o.created_at, 0)
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                        if o.disabled { "disabled" } else { "active" }.to_owned(),
                    ]
                })
                .collect();
            print_table(&["NAME", "CREATED (UTC)", "STATE"], &rows);
        }
        OperatorCommand::Disable { name } => {
            pdm_web::operators_admin::disable(&operators, &name).await?;
            println!("operator {name} disabled; their sessions ended");
        }
    }
    Ok(())
}

/// The password: from the variable, else one line of stdin (not echoed on a terminal).
fn password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return Ok(password);
    }
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        eprint!("password for the operator: ");
        std::io::stderr().flush()?;
        // No echo while typing; `stty` is on every system with a terminal.
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if terminal {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
