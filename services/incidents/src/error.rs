//! The incidents service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the incidents service.
#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such incident.
    #[error("incident not found")]
    NotFound,
    /// The incident's state does not allow the change (the reason holds no personal data).
    #[error("precondition: {1}")]
    Precondition(&'static str, String),
    /// `expected_version` is not the current one, or another change landed first.
    #[error("version conflict")]
    Conflict {
        /// The version the incident is at.
        current: i32,
    },
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// A stored value could not be read back.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<IncidentsError> for Status {
    fn from(err: IncidentsError) -> Self {
        match err {
            IncidentsError::Invalid(status) => status,
            IncidentsError::NotFound => Status::not_found("incident not found"),
            IncidentsError::Precondition(kind, why) => {
                status::failed_precondition(kind, "incident", &why)
            }
            IncidentsError::Conflict { current } => Status::aborted(format!(
                "the incident is at version {current}: read it again and retry"
            )),
            IncidentsError::Db(e) => status::database("incidents", &e),
            IncidentsError::Internal(what) => status::internal("incidents", what),
        }
    }
}

/// Results of the incidents service.
pub type Result<T, E = IncidentsError> = std::result::Result<T, E>;
