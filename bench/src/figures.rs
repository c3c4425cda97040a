//! Small arithmetic the benchmark reports share.

use std::time::Duration;

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median (the upper one of an even count); 0 for no values.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Rounded to one decimal.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Rounded to three decimals.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Totals to grow data to, from the comma-separated list in the environment variable
/// `var` (underscores allowed: `1_000_000`), ascending; `default` when it is unset.
pub fn steps(var: &str, default: &[u64]) -> anyhow::Result<Vec<u64>> {
    let Ok(list) = std::env::var(var) else {
        return Ok(default.to_vec());
    };
    let mut steps = list
        .split(',')
        .map(|s| s.trim().replace('_', "").parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{var}: {e}"))?;
    steps.sort_unstable();
    anyhow::ensure!(!steps.is_empty(), "{var} is empty");
    Ok(steps)
}
