//! `pdm certs`: the development PKI for mutual TLS.

use clap::Subcommand;
use pdm_runtime::Settings;

use crate::catalogue;

/// The company client `make run` issues a certificate for, so the banner's examples work.
pub const DEMO_CLIENT: &str = "demo";

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a CA and a certificate per service and for `admin` into the certificate
    /// directory (`tls.dir`, default `<data_dir>/certs`). Development only: production
    /// certificates come from cert-manager (see k8s/).
    Init {
        /// Replace existing certificates.
        #[arg(long)]
        force: bool,
        /// Also issue certificates for these company clients (comma-separated names).
        #[arg(long, default_value = DEMO_CLIENT)]
        clients: String,
    },
}

/// Runs a `pdm certs` command.
pub fn run(settings: &Settings, command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { force, clients } => {
            let dir = settings.tls.dir(&settings.data_dir);
            let clients: Vec<&str> = clients
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let written = pdm_dev_pki::init_certificates(
                &dir,
                &settings.tls.trust_domain,
                &settings.tls.namespace,
                &catalogue::identities(),
                &clients,
                force,
            )?;
            if written.is_empty() {
                println!(
                    "certificates already in {} (use --force to replace them)",
                    dir.display()
                );
            } else {
                for path in written {
                    println!("wrote {}", path.display());
                }
            }
            Ok(())
        }
    }
}
