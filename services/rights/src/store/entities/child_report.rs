//! The `child_reports` table: reports of a child's data, until the privacy team confirms
//! them into an erasure request.

use sea_orm::entity::prelude::*;

use crate::store::status::ChildReportStatus;

/// A report.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "child_reports")]
pub struct Model {
    /// Id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub report_id: String,
    /// Waiting, or confirmed.
    pub status: ChildReportStatus,
    /// Received.
    pub received_at: ChronoDateTimeUtc,
    /// Confirmed by the privacy team.
    pub confirmed_at: Option<ChronoDateTimeUtc>,
    /// The subject named (by the reporter or on confirmation).
    pub subject_id: Option<String>,
    /// The caller that reported it.
    pub reported_by: Option<String>,
    /// The erasure request made on confirmation.
    pub request_id: Option<String>,
    /// The report's data key, wrapped by the KEK.
    pub wrapped_key: Vec<u8>,
    /// Sealed JSON: the email named, the reporter's contact, their notes.
    pub details: Vec<u8>,
    /// Last change.
    pub updated_at: ChronoDateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
