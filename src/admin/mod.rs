//! Commands for the privacy team: thin gRPC clients of the running services, printing
//! tables.

pub mod consent;
pub mod retention;
pub mod rights;
pub mod transfers;

use std::time::Duration;

use pdm_runtime::{Settings, client::TracedChannel};

/// A channel to a service, at the endpoint the settings give for it.
pub fn channel(settings: &Settings, service: &str) -> anyhow::Result<TracedChannel> {
    let endpoint = settings.endpoint(service)?;
    client_channel(&endpoint)
}

fn client_channel(endpoint: &str) -> anyhow::Result<TracedChannel> {
    pdm_runtime::client::channel(endpoint, Duration::from_secs(30))
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
