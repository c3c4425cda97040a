//! Commands for the privacy team: thin gRPC clients of the running services, printing
//! tables.

pub mod assessments;
pub mod audit;
pub mod audit_checkpoint;
pub mod certs;
pub mod consent;
pub mod incidents;
pub mod keys;
pub mod retention;
pub mod rights;
pub mod transfers;
pub mod web;

use std::time::Duration;

use anyhow::Context as _;
use pdm_runtime::{Settings, client::TracedChannel, security::Security};
use pdm_tls::identity::Caller;

/// A channel to a service, at the endpoint the settings give for it, as the privacy
/// team's `admin` identity (its certificate from the certificate directory).
pub fn channel(settings: &Settings, service: &str) -> anyhow::Result<TracedChannel> {
    let endpoint = settings.endpoint(service)?;
    let security = Security::load(settings)?;
    let tls = security
        .client_tls(&Caller::Admin)
        .context("the admin certificate (see `pdm certs init`)")?;
    pdm_runtime::client::channel_for(
        &endpoint,
        Duration::from_secs(30),
        tls,
        security.identity_header(&Caller::Admin),
    )
}

/// Prints rows as an aligned table.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!(
        "{}",
        line(headers.iter().map(|h| (*h).to_owned()).collect())
    );
    for row in rows {
        println!("{}", line(row.clone()));
    }
}
