//! Prometheus metrics: one registry per process, written in the text format (0.0.4) by
//! [`serve`] on `metrics.listen`. The crate knows no metric of its own: the runtime
//! registers the RPC and background-job families, each service its own (their names are
//! listed in `docs/operations.md` and read by `k8s/dashboards/pdm.json`).
//!
//! Every label value is a `&'static str` from a closed set: no personal data, no
//! unbounded series. Values that live in a database (the rights queue) are read at scrape
//! time by a collector registered with [`on_scrape`].
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

mod family;
mod http;
mod registry;

pub use family::{Counter, DURATION_BUCKETS, Encode, Family, Gauge, Histogram};
pub use http::{CONTENT_TYPE, serve};
pub use registry::{Metric, ScrapeHook, encode, on_scrape, register, register_all, render};
