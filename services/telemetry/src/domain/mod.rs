//! The telemetry service's rules: minimisation of what comes in, scrubbing of crash
//! reports, the consent gate's reasons, and k-threshold suppression. No I/O.

pub mod aggregate;
pub mod geo;
pub mod ip;
pub mod scrub;
pub mod url;
