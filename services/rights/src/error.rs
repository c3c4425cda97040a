//! The rights service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the rights service.
#[derive(Debug, thiserror::Error)]
pub enum RightsError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such request.
    #[error("request not found")]
    NotFound,
    /// The request is not in a state that allows this.
    #[error("{0}")]
    NotAllowed(String),
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// A field could not be sealed or opened.
    #[error("crypto")]
    Crypto(#[from] pdm_crypto::CryptoError),
    /// The caller may not do this (PERMISSION_DENIED).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A service this call needs did not answer (UNAVAILABLE: retry with backoff).
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<RightsError> for Status {
    fn from(err: RightsError) -> Self {
        match err {
            RightsError::Invalid(status) => status,
            RightsError::NotFound => Status::not_found("request not found"),
            RightsError::Forbidden(why) => Status::permission_denied(why),
            RightsError::NotAllowed(why) => {
                status::failed_precondition("REQUEST_STATE", "request_id", &why)
            }
            RightsError::Db(e) => status::database("rights", &e),
            RightsError::Crypto(e) => status::internal("rights.crypto", &e.to_string()),
            RightsError::Unavailable(what) => {
                Status::unavailable(format!("{what} unavailable; retry with backoff"))
            }
            RightsError::Internal(what) => status::internal("rights", what),
        }
    }
}

/// Results of the rights service.
pub type Result<T, E = RightsError> = std::result::Result<T, E>;
