//! sea-orm entities of the rights schema (see `migration/`).

pub mod child_report;
pub mod concern;
pub mod notice;
pub mod outbox;
pub mod package_chunk;
pub mod request;
pub mod request_access;
pub mod task;
