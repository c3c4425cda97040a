//! The mesh's vocabulary, shared below the runtime and the access trail: errors as gRPC
//! statuses with field violations, subject and request ids, text rules (card numbers),
//! clocks, protobuf conversions, and the write transaction every store opens.
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

pub mod clock;
pub mod convert;
pub mod db;
pub mod error;
pub mod ids;
pub mod text;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::FieldViolations;
pub use ids::SubjectId;
