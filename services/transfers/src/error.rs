//! The transfers service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the transfers service.
#[derive(Debug, thiserror::Error)]
pub enum TransfersError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such recipient or mechanism.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The consent service could not be asked.
    #[error("consent unavailable")]
    ConsentUnavailable,
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// An erasure receipt could not be kept or read, or its request id was reused.
    #[error("erasure receipt")]
    Receipt(#[from] pdm_runtime::erasure::ReceiptError),
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<TransfersError> for Status {
    fn from(err: TransfersError) -> Self {
        match err {
            TransfersError::Invalid(status) => status,
            TransfersError::NotFound(what) => Status::not_found(format!("{what} not found")),
            TransfersError::ConsentUnavailable => {
                Status::unavailable("consent service unavailable; retry with backoff")
            }
            TransfersError::Db(e) => status::database("transfers", &e),
            TransfersError::Receipt(e) => e.into_status("transfers"),
            TransfersError::Internal(what) => status::internal("transfers", what),
        }
    }
}

/// Results of the transfers service.
pub type Result<T, E = TransfersError> = std::result::Result<T, E>;
