//! The transfers service's rules: countries and regimes, adequacy lists, and the
//! authorisation of a transfer. No I/O.

pub mod adequacy;
pub mod authorize;
pub mod choice;
pub mod country;
pub mod legal_order;
pub mod mechanism;
