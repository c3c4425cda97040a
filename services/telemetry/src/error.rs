//! The telemetry service's errors, mapped to gRPC statuses in exactly one place.

use pdm_runtime::error as status;
use sea_orm::DbErr;
use tonic::Status;

/// Everything that can go wrong in the telemetry service.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Bad input; already carries its field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// Too many batches in flight.
    #[error("overloaded")]
    Overloaded,
    /// The consent service could not be asked.
    #[error("consent unavailable")]
    ConsentUnavailable,
    /// Identity could not confirm the caller's relationship with a subject.
    #[error("identity unavailable")]
    IdentityUnavailable,
    /// These subjects were erased while their data was being written: nothing was
    /// written, and the caller judges again.
    #[error("subjects erased meanwhile")]
    ErasedMeanwhile(Vec<String>),
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
    /// An erasure receipt could not be kept or read, or its request id was reused.
    #[error("erasure receipt")]
    Receipt(#[from] pdm_runtime::erasure::ReceiptError),
    /// A key could not be read or made.
    #[error("keys")]
    Keys(#[from] pdm_crypto::key_store::KeyStoreError),
    /// A field could not be sealed.
    #[error("crypto")]
    Crypto(#[from] pdm_crypto::CryptoError),
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<sea_orm::sqlx::Error> for TelemetryError {
    fn from(err: sea_orm::sqlx::Error) -> Self {
        Self::Db(DbErr::Exec(sea_orm::RuntimeErr::SqlxError(
            std::sync::Arc::new(err),
        )))
    }
}

impl From<TelemetryError> for Status {
    fn from(err: TelemetryError) -> Self {
        match err {
            TelemetryError::Invalid(status) => status,
            TelemetryError::Overloaded => status::retry_after(
                "too many batches in flight; retry with backoff",
                std::time::Duration::from_millis(200),
            ),
            TelemetryError::ConsentUnavailable => {
                Status::unavailable("consent service unavailable; retry with backoff")
            }
            TelemetryError::IdentityUnavailable => Status::unavailable(
                "the identity service cannot confirm the caller's relationship with a subject; retry with backoff",
            ),
            TelemetryError::ErasedMeanwhile(_) => {
                Status::aborted("a subject was erased while the request ran; retry")
            }
            TelemetryError::Db(e) => status::database("telemetry", &e),
            TelemetryError::Receipt(e) => e.into_status("telemetry"),
            TelemetryError::Keys(pdm_crypto::key_store::KeyStoreError::Db(e)) => {
                status::database("telemetry.keys", &e)
            }
            TelemetryError::Keys(pdm_crypto::key_store::KeyStoreError::Crypto(e))
            | TelemetryError::Crypto(e) => status::internal("telemetry.crypto", &e.to_string()),
            TelemetryError::Internal(what) => status::internal("telemetry", what),
        }
    }
}

/// Results of the telemetry service.
pub type Result<T, E = TelemetryError> = std::result::Result<T, E>;
