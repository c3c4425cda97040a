//! The rights service's rules: legal deadlines, what each kind of request asks of which
//! service, what the outbox keeps of an address, how messages are retried, and the yearly
//! report. No I/O.

pub mod answers;
pub mod children;
pub mod claims;
pub mod concerns;
pub mod deadline;
pub mod delivery;
pub mod mailbox;
pub mod notice;
pub mod plan;
pub mod proof;
pub mod receipt;
pub mod refusal;
pub mod report;
