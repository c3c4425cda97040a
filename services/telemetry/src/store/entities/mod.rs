//! sea-orm entities of the telemetry schema (events have none: they are written in bulk
//! with COPY on PostgreSQL and read with plain statements).

pub mod aggregate;
pub mod batch;
pub mod crash;
pub mod erasure_queue;
pub mod restriction;
pub mod suppression;
pub mod tracking_choice;
