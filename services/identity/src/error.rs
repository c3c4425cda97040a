//! The identity service's errors, mapped to gRPC statuses in exactly one place.

use pdm_crypto::{CryptoError, key_store::KeyStoreError};
use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the identity service.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No account with that subject id.
    #[error("account not found")]
    NotFound,
    /// The thing asked for (photo, billing contact) does not exist.
    #[error("{0} not found")]
    Missing(&'static str),
    /// The email belongs to another account.
    #[error("email already in use")]
    EmailTaken,
    /// The birth date makes the subject younger than 18.
    #[error("under age")]
    Underage,
    /// Processing of the account is restricted.
    #[error("processing restricted")]
    Restricted,
    /// Special categories were declared without the subject's explicit consent to them
    /// (the consent purposes missing).
    #[error("explicit consent missing")]
    NoExplicitConsent(Vec<&'static str>),
    /// Wrong or unknown credentials.
    #[error("invalid credentials")]
    Unauthenticated,
    /// Too many failed attempts; retry after the delay.
    #[error("too many failed attempts")]
    Throttled(std::time::Duration),
    /// Password hashing is at capacity; retry after the delay.
    #[error("password hashing at capacity")]
    HashingBusy(std::time::Duration),
    /// An erasure receipt could not be kept or read, or its request id was reused.
    #[error("erasure receipt")]
    Receipt(#[from] pdm_runtime::erasure::ReceiptError),
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// A key could not be read or made.
    #[error("keys")]
    Keys(#[from] KeyStoreError),
    /// A field could not be sealed or opened.
    #[error("crypto")]
    Crypto(#[from] CryptoError),
    /// A service this one depends on does not answer.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// A blocking task failed.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<IdentityError> for Status {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::Invalid(status) => status,
            IdentityError::NotFound => Status::not_found("account not found"),
            IdentityError::Missing(what) => Status::not_found(format!("{what} not found")),
            IdentityError::EmailTaken => {
                Status::already_exists("email: already used by another account")
            }
            IdentityError::Underage => status::failed_precondition(
                "AGE",
                "birth_date",
                "account holders must be 18 or older",
            ),
            IdentityError::Restricted => status::failed_precondition(
                "RESTRICTED",
                "subject_id",
                "processing of this account is restricted",
            ),
            IdentityError::NoExplicitConsent(purposes) => {
                use pdm_runtime::tonic_types::{ErrorDetails, PreconditionViolation, StatusExt};
                let violations: Vec<PreconditionViolation> = purposes
                    .iter()
                    .map(|purpose| {
                        PreconditionViolation::new(
                            "EXPLICIT_CONSENT",
                            *purpose,
                            "the subject's explicit consent to this special category is not in force",
                        )
                    })
                    .collect();
                Status::with_error_details(
                    tonic::Code::FailedPrecondition,
                    "special categories declared without the subject's explicit consent",
                    ErrorDetails::with_precondition_failure(violations),
                )
            }
            IdentityError::Unauthenticated => Status::unauthenticated("invalid credentials"),
            IdentityError::Throttled(delay) => {
                status::retry_after("too many failed attempts; retry later", delay)
            }
            IdentityError::HashingBusy(delay) => {
                status::retry_after("too many sign-ins at once; retry later", delay)
            }
            IdentityError::Receipt(e) => e.into_status("identity"),
            IdentityError::Db(e) => status::database("identity", &e),
            IdentityError::Keys(KeyStoreError::Db(e)) => status::database("identity.keys", &e),
            IdentityError::Keys(KeyStoreError::Crypto(e)) | IdentityError::Crypto(e) => {
                status::internal("identity.crypto", &e.to_string())
            }
            IdentityError::Unavailable(what) => {
                Status::unavailable(format!("{what} unavailable; retry with backoff"))
            }
            IdentityError::Internal(what) => status::internal("identity", what),
        }
    }
}

/// Results of the identity service.
pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
