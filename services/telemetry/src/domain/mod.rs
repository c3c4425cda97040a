//! The telemetry service's rules: minimisation of what comes in, scrubbing of crash
//! reports, the consent gate's reasons, k-threshold suppression by distinct people, and
//! the tracking choice of logged-out visitors. No I/O.

pub mod aggregate;
pub mod geo;
pub mod ip;
pub mod scrub;
pub mod tracking;
pub mod url;
