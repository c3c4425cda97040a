//! The metric types pdm exports and their Prometheus text encoding (format 0.0.4).
//!
//! Label values are `&'static str` from closed sets (gRPC methods of our protos, status
//! code names, decision reasons): a series is found without allocating, and no label can
//! carry personal data or grow without bound.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        PoisonError, RwLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

/// A value that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that is set.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the call duration buckets, in seconds: from a cached decision
/// (about a millisecond) to the server's default request timeout (10 s).
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations counted in [`DURATION_BUCKETS`] (plus `+Inf`), with their sum.
#[derive(Debug)]
pub struct Histogram {
    /// Per bucket (not cumulative), the last one `+Inf`.
    counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, value: f64) {
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // `fetch_update` retries until no other thread changed the sum meanwhile.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// How a metric type is written.
pub trait Encode: Default {
    /// The `# TYPE` of the family.
    const KIND: &'static str;

    /// Writes the sample lines of one series; `labels` is `name="value",…` (maybe empty).
    fn encode(&self, out: &mut String, name: &str, labels: &str);
}

impl Encode for Counter {
    const KIND: &'static str = "counter";

    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        sample(out, name, labels, "", self.get());
    }
}

impl Encode for Gauge {
    const KIND: &'static str = "gauge";

    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        sample(out, name, labels, "", self.get());
    }
}

impl Encode for Histogram {
    const KIND: &'static str = "histogram";

    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = DURATION_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |bound| bound.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        sample(out, name, labels, "_sum", sum);
        // The `+Inf` bucket and the count are the same number, as Prometheus expects.
        sample(out, name, labels, "_count", cumulative);
    }
}

fn sample(out: &mut String, name: &str, labels: &str, suffix: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name}{suffix} {value}");
    } else {
        let _ = writeln!(out, "{name}{suffix}{{{labels}}} {value}");
    }
}

/// A metric and its series, one per combination of `N` label values.
#[derive(Debug)]
pub struct Family<const N: usize, M> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    series: RwLock<HashMap<[&'static str; N], M>>,
}

impl<const N: usize, M: Encode> Family<N, M> {
    /// A family without series yet.
    pub fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self {
            name,
            help,
            labels,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `f` on the series of `values`, creating it on first use.
    pub fn with<T>(&self, values: [&'static str; N], f: impl FnOnce(&M) -> T) -> T {
        // A panic while a lock was held cannot leave a counter half-written: the
        // poisoned map is used as it is.
        if let Some(metric) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&values)
        {
            return f(metric);
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        f(series.entry(values).or_default())
    }

    /// The series of `values`, if it was ever used.
    pub fn get<T>(&self, values: [&'static str; N], f: impl FnOnce(&M) -> T) -> Option<T> {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&values)
            .map(f)
    }

    /// Writes the family: `# HELP`, `# TYPE`, then its series in label order.
    pub fn encode(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, M::KIND);
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&[&'static str; N]> = series.keys().collect();
        keys.sort_unstable();
        let mut labels = String::new();
        for key in keys {
            labels.clear();
            for (i, (label, value)) in self.labels.iter().zip(key.iter()).enumerate() {
                if i > 0 {
                    labels.push(',');
                }
                labels.push_str(label);
                labels.push_str("=\"");
                escape_into(&mut labels, value);
                labels.push('"');
            }
            if let Some(metric) = series.get(key) {
                metric.encode(out, self.name, &labels);
            }
        }
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_family_is_written_in_label_order() {
        let family: Family<2, Counter> =
            Family::new("pdm_test_total", "Things counted.", ["kind", "reason"]);
        family.with(["b", "x"], |c| c.add(2));
        family.with(["a", "quote\"back\\slash\nline"], |c| c.add(1));
        family.with(["b", "x"], |c| c.add(3));
        let mut out = String::new();
        family.encode(&mut out);
        assert_eq!(
            out,
            "# HELP pdm_test_total Things counted.\n\
             # TYPE pdm_test_total counter\n\
             pdm_test_total{kind=\"a\",reason=\"quote\\\"back\\\\slash\\nline\"} 1\n\
             pdm_test_total{kind=\"b\",reason=\"x\"} 5\n"
        );
    }

    #[test]
    fn an_unlabelled_gauge_has_no_braces() {
        let family: Family<0, Gauge> = Family::new("pdm_test_open", "Open things.", []);
        let mut out = String::new();
        family.encode(&mut out);
        assert!(
            !out.lines().any(|line| line.starts_with("pdm_test_open")),
            "no series before a value: {out}"
        );
        family.with([], |g| g.set(7));
        family.with([], |g| g.set(4));
        out.clear();
        family.encode(&mut out);
        assert!(out.ends_with("\npdm_test_open 4\n"), "{out}");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let family: Family<1, Histogram> =
            Family::new("pdm_test_seconds", "Durations.", ["method"]);
        // Powers of two: the sum is exact.
        for value in [0.000_976_562_5, 0.003_906_25, 0.003_906_25, 42.0] {
            family.with(["m"], |h| h.observe(value));
        }
        let mut out = String::new();
        family.encode(&mut out);
        assert!(out.contains("# TYPE pdm_test_seconds histogram\n"), "{out}");
        assert!(
            out.contains("pdm_test_seconds_bucket{method=\"m\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_bucket{method=\"m\",le=\"0.0025\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_bucket{method=\"m\",le=\"0.005\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_bucket{method=\"m\",le=\"10\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_bucket{method=\"m\",le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_sum{method=\"m\"} 42.0087890625\n"),
            "{out}"
        );
        assert!(
            out.contains("pdm_test_seconds_count{method=\"m\"} 4\n"),
            "{out}"
        );
    }
}
