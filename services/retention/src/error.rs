//! The retention service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the retention service.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such policy, hold or run.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Another purge run holds the lease (here or on another replica).
    #[error("purge lease held")]
    LeaseHeld,
    /// A limit on stored items was reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<RetentionError> for Status {
    fn from(err: RetentionError) -> Self {
        match err {
            RetentionError::Invalid(status) => status,
            RetentionError::NotFound(what) => Status::not_found(format!("{what} not found")),
            RetentionError::LeaseHeld => {
                Status::aborted("another purge run is in progress; try again when it has finished")
            }
            RetentionError::Limit(what) => status::failed_precondition("LIMIT", what, what),
            RetentionError::Db(e) => status::database("retention", &e),
            RetentionError::Internal(what) => status::internal("retention", what),
        }
    }
}

/// Results of the retention service.
pub type Result<T, E = RetentionError> = std::result::Result<T, E>;
