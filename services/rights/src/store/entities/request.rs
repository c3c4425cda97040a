//! The `requests` table.

use sea_orm::entity::prelude::*;

use crate::store::status::RequestStatus;

/// A data-subject request.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "requests")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Caller's idempotency key.
    pub client_reference: Option<String>,
    /// `RequestKind` name.
    pub kind: String,
    /// `Regime` name.
    pub regime: String,
    /// Subject (the claimed one until verified).
    pub subject_id: Option<String>,
    /// Where it stands.
    pub status: RequestStatus,
    /// 1 for requests concerning a child, else 0.
    pub priority: i32,
    /// Received.
    pub received_at: ChronoDateTimeUtc,
    /// Verified.
    pub verified_at: Option<ChronoDateTimeUtc>,
    /// Deadline in force.
    pub due_at: ChronoDateTimeUtc,
    /// First deadline.
    pub original_due_at: ChronoDateTimeUtc,
    /// Extension reason.
    pub extension_reason: Option<String>,
    /// CCPA confirmation deadline.
    pub confirm_by: Option<ChronoDateTimeUtc>,
    /// Closed.
    pub closed_at: Option<ChronoDateTimeUtc>,
    /// Why denied or cancelled.
    pub outcome_reason: Option<String>,
    /// The request's data key, wrapped by the KEK.
    pub wrapped_key: Vec<u8>,
    /// Sealed JSON details (purpose, rectifications, notes, contact).
    pub details: Vec<u8>,
    /// W3C traceparent of the submitting call, so the fan-out continues its trace.
    pub trace_parent: Option<String>,
    /// When the export package expires.
    pub package_expires_at: Option<ChronoDateTimeUtc>,
    /// Last change.
    pub updated_at: ChronoDateTimeUtc,
    /// The account-deletion reason the subject gave (a `DeletionReason` name).
    pub deletion_reason: Option<String>,
    /// Keyed hash of the subject id, set when the details are forgotten.
    pub subject_ref: Option<Vec<u8>>,
    /// When the personal details were deleted at the end of the proof period.
    pub forgotten_at: Option<ChronoDateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
