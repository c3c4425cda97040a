//! The consent service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use pdm_runtime::tonic_types::StatusExt as _;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the consent service.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// Identity does not know the subject.
    #[error("subject not found")]
    UnknownSubject,
    /// The change does not fit the purpose's legal basis.
    #[error("{0}")]
    NotApplicable(String),
    /// Identity could not be asked.
    #[error("identity unavailable")]
    IdentityUnavailable,
    /// This replica had not applied the ledger up to the caller's consistency token within
    /// `consent.token_wait_ms`; the caller retries after the delay.
    #[error("behind the consistency token")]
    Behind(std::time::Duration),
    /// An unsubscribe link past its validity.
    #[error("unsubscribe link expired")]
    LinkExpired,
    /// An unsubscribe link that is not (or no longer) stored: its subject was erased.
    #[error("unsubscribe link not found")]
    LinkNotFound,
    /// An erasure receipt could not be kept or read, or its request id was reused.
    #[error("erasure receipt")]
    Receipt(#[from] pdm_runtime::erasure::ReceiptError),
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<ConsentError> for Status {
    fn from(err: ConsentError) -> Self {
        match err {
            ConsentError::Invalid(status) => status,
            ConsentError::UnknownSubject => Status::not_found("subject not found"),
            ConsentError::NotApplicable(why) => {
                status::failed_precondition("LEGAL_BASIS", "purpose", &why)
            }
            ConsentError::IdentityUnavailable => {
                Status::unavailable("identity service unavailable; retry with backoff")
            }
            ConsentError::Behind(delay) => Status::with_error_details(
                tonic::Code::Unavailable,
                "this replica has not applied the ledger up to the consistency token yet; retry",
                pdm_runtime::tonic_types::ErrorDetails::with_retry_info(Some(delay)),
            ),
            ConsentError::LinkExpired => status::failed_precondition(
                "LINK_EXPIRED",
                "token",
                "the unsubscribe link has expired; opt out in the privacy settings instead",
            ),
            ConsentError::LinkNotFound => Status::not_found("unsubscribe link not found"),
            ConsentError::Receipt(e) => e.into_status("consent"),
            ConsentError::Db(e) => status::database("consent", &e),
            ConsentError::Internal(what) => status::internal("consent", what),
        }
    }
}

/// Results of the consent service.
pub type Result<T, E = ConsentError> = std::result::Result<T, E>;
