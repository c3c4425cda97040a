//! `pdm`: runs the personal-data mesh and drives it. Wiring only: the rules live in the
//! service crates, the shared behaviour in `pdm-runtime`.
#![forbid(unsafe_code)]
// A service answers errors; it never panics on a path a caller can reach (tests may).
#![warn(clippy::expect_used, clippy::panic)]

mod admin;
mod allocator;
mod catalogue;
mod cli;
mod sections;
mod serve;

use clap::Parser;

/// Exit code for a configuration error (EX_CONFIG).
const EXIT_CONFIG: i32 = 78;

fn main() {
    let cli = cli::Cli::parse();
    if matches!(cli.command, cli::Command::Serve(_)) {
        allocator::settle();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pdm: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Serve(args) => serve::run(cli.config.as_deref(), args).await,
            cli::Command::Services => {
                catalogue::print();
                Ok(())
            }
            cli::Command::Config(cli::ConfigCommand::Check) => {
                sections::load(cli.config.as_deref())?;
                println!("the settings are valid");
                Ok(())
            }
            cli::Command::Assessments(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::assessments::run(&settings, *command).await
            }
            cli::Command::Audit(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::audit::run(&settings, command).await
            }
            cli::Command::Certs(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::certs::run(&settings, command)
            }
            cli::Command::Consent(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::consent::run(&settings, command).await
            }
            cli::Command::Keys(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::keys::run(&settings, command).await
            }
            cli::Command::Incidents(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::incidents::run(&settings, *command).await
            }
            cli::Command::Retention(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::retention::run(&settings, command).await
            }
            cli::Command::Rights(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::rights::run(&settings, command).await
            }
            cli::Command::Transfers(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::transfers::run(&settings, command).await
            }
            cli::Command::Web(command) => {
                let settings = pdm_runtime::Settings::load(cli.config.as_deref())?;
                admin::web::run(&settings, command).await
            }
        }
    });
    if let Err(err) = result {
        let config_error = err
            .downcast_ref::<pdm_runtime::settings::SettingsError>()
            .is_some();
        eprintln!("pdm: {err:#}");
        std::process::exit(if config_error { EXIT_CONFIG } else { 1 });
    }
}
