//! The states kept in the `status` columns of the rights tables, as types: every write,
//! filter and comparison goes through these enums, never a string.
//!
//! Each value is the string the service has always stored (the protobuf enum's name for
//! requests, child reports and concerns; a lowercase word for tasks and messages), so a
//! database written by an earlier version reads back unchanged. The conversions to the
//! protobuf enums are here, once each.

use pdm_proto::rights::v1 as pb;
use sea_orm::entity::prelude::*;

// The columns are `string(..)` in the migrations: VARCHAR without a length.

/// Where a request stands (`requests.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RequestStatus {
    /// Waiting for the subject to prove who they are.
    #[sea_orm(string_value = "STATUS_VERIFICATION_REQUIRED")]
    VerificationRequired,
    /// Verified; its tasks are running.
    #[sea_orm(string_value = "STATUS_IN_PROGRESS")]
    InProgress,
    /// Every task finished.
    #[sea_orm(string_value = "STATUS_COMPLETED")]
    Completed,
    /// Refused, with reasons.
    #[sea_orm(string_value = "STATUS_DENIED")]
    Denied,
    /// Withdrawn by its submitter.
    #[sea_orm(string_value = "STATUS_CANCELLED")]
    Cancelled,
}

impl RequestStatus {
    /// The states of a request still open: awaiting verification or in progress.
    pub const OPEN: [Self; 2] = [Self::VerificationRequired, Self::InProgress];

    /// Whether a request in this state is still open (it can be extended, refused,
    /// cancelled, and it can fall overdue).
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// Whether the request was answered: completed or refused (the yearly report's
    /// "days to answer").
    pub fn is_answered(self) -> bool {
        matches!(self, Self::Completed | Self::Denied)
    }
}

impl From<RequestStatus> for pb::Status {
    fn from(status: RequestStatus) -> Self {
        match status {
            RequestStatus::VerificationRequired => Self::VerificationRequired,
            RequestStatus::InProgress => Self::InProgress,
            RequestStatus::Completed => Self::Completed,
            RequestStatus::Denied => Self::Denied,
            RequestStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// `STATUS_UNSPECIFIED` names no state a request can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspecified;

impl TryFrom<pb::Status> for RequestStatus {
    type Error = Unspecified;

    fn try_from(status: pb::Status) -> Result<Self, Unspecified> {
        match status {
            pb::Status::Unspecified => Err(Unspecified),
            pb::Status::VerificationRequired => Ok(Self::VerificationRequired),
            pb::Status::InProgress => Ok(Self::InProgress),
            pb::Status::Completed => Ok(Self::Completed),
            pb::Status::Denied => Ok(Self::Denied),
            pb::Status::Cancelled => Ok(Self::Cancelled),
        }
    }
}

/// Where one task of a request stands (`tasks.status`); shown as is on the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TaskStatus {
    /// Waiting to run.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Claimed by a worker (until its lease ends).
    #[sea_orm(string_value = "running")]
    Running,
    /// Done.
    #[sea_orm(string_value = "done")]
    Done,
    /// Failed; retried after a backoff.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Refused by the service for good (e.g. an objection that does not apply), or
    /// cancelled with its request.
    #[sea_orm(string_value = "rejected")]
    Rejected,
}

impl TaskStatus {
    /// The states of a task still to run (a worker may claim it when due).
    pub const TO_RUN: [Self; 2] = [Self::Pending, Self::Failed];
    /// The states of a task that will not run again.
    pub const FINISHED: [Self; 2] = [Self::Done, Self::Rejected];

    /// Whether the task will not run again.
    pub fn is_finished(self) -> bool {
        Self::FINISHED.contains(&self)
    }
}

/// Where a child report stands (`child_reports.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ChildReportStatus {
    /// Waiting for the privacy team.
    #[sea_orm(string_value = "CHILD_REPORT_STATUS_REPORTED")]
    Reported,
    /// Confirmed into an erasure request.
    #[sea_orm(string_value = "CHILD_REPORT_STATUS_CONFIRMED")]
    Confirmed,
}

impl From<ChildReportStatus> for pb::ChildReportStatus {
    fn from(status: ChildReportStatus) -> Self {
        match status {
            ChildReportStatus::Reported => Self::Reported,
            ChildReportStatus::Confirmed => Self::Confirmed,
        }
    }
}

/// Where a concern stands (`concerns.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ConcernStatus {
    /// Waiting for the privacy team's answer.
    #[sea_orm(string_value = "CONCERN_STATUS_OPEN")]
    Open,
    /// Answered.
    #[sea_orm(string_value = "CONCERN_STATUS_CLOSED")]
    Closed,
}

impl From<ConcernStatus> for pb::ConcernStatus {
    fn from(status: ConcernStatus) -> Self {
        match status {
            ConcernStatus::Open => Self::Open,
            ConcernStatus::Closed => Self::Closed,
        }
    }
}

/// How a message to a subject fared (`outbox.status`): [`crate::domain::delivery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MessageStatus {
    /// Waiting to be sent (or for its next attempt).
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Accepted by the relay (or written to the mailbox file).
    #[sea_orm(string_value = "sent")]
    Sent,
    /// Given up on: attempts exhausted, or the message was refused for good.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Never sent: its subject was erased before it went.
    #[sea_orm(string_value = "dropped")]
    Dropped,
}

impl From<MessageStatus> for pb::DeliveryStatus {
    fn from(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Pending => Self::Pending,
            MessageStatus::Sent => Self::Sent,
            MessageStatus::Failed => Self::Failed,
            MessageStatus::Dropped => Self::Dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    /// The stored strings are those earlier versions wrote: changing one would strand
    /// every row holding it.
    #[test]
    fn the_stored_strings_stay_what_earlier_versions_wrote() {
        let names = |values: Vec<String>| values.join(",");
        assert_eq!(
            names(RequestStatus::iter().map(|s| s.to_value()).collect()),
            "STATUS_VERIFICATION_REQUIRED,STATUS_IN_PROGRESS,STATUS_COMPLETED,STATUS_DENIED,\
             STATUS_CANCELLED"
        );
        assert_eq!(
            names(TaskStatus::iter().map(|s| s.to_value()).collect()),
            "pending,running,done,failed,rejected"
        );
        assert_eq!(
            names(MessageStatus::iter().map(|s| s.to_value()).collect()),
            "pending,sent,failed,dropped"
        );
        // The protobuf names, for the states the protobuf enums know.
        for s in RequestStatus::iter() {
            assert_eq!(s.to_value(), pb::Status::from(s).as_str_name());
            assert_eq!(RequestStatus::try_from(pb::Status::from(s)), Ok(s));
        }
        for s in ChildReportStatus::iter() {
            assert_eq!(s.to_value(), pb::ChildReportStatus::from(s).as_str_name());
        }
        for s in ConcernStatus::iter() {
            assert_eq!(s.to_value(), pb::ConcernStatus::from(s).as_str_name());
        }
        assert_eq!(
            RequestStatus::try_from(pb::Status::Unspecified),
            Err(Unspecified)
        );
    }
}
