//! sea-orm entities of the transfers schema (see `migration/`).

pub mod mechanism;
pub mod recipient;
pub mod transfer_log;
