//! The incidents service's rules: the regime table, the incident's details, the authority
//! clocks and the order of phased notifications. No I/O.

pub mod assessment;
pub mod deadline;
pub mod incident;
pub mod notice;
pub mod notification;
pub mod regime;
pub mod region;
