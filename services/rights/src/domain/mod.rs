//! The rights service's rules: legal deadlines, what each kind of request asks of which
//! service, and the yearly report. No I/O.

pub mod deadline;
pub mod plan;
pub mod report;
