//! What a call to pdm can answer besides success, as one enum carrying what the status's
//! details say: the bad fields, the unmet preconditions, how long to wait.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field, as the proto names it (`items[3].purpose`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// One unmet precondition (e.g. `LEGAL_BASIS` on `purpose`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// Its kind.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// Why.
    pub description: String,
}

/// An error from pdm.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PdmError {
    /// Bad input: nothing was stored. Every bad field is listed.
    #[error("invalid argument: {}", describe(.violations))]
    InvalidArgument {
        /// The bad fields.
        violations: Vec<FieldViolation>,
    },
    /// The request is valid but the state does not allow it.
    #[error("failed precondition: {message}")]
    FailedPrecondition {
        /// The server's message.
        message: String,
        /// What does not hold.
        preconditions: Vec<Precondition>,
    },
    /// The subject (or thing) is unknown, or hidden from this caller.
    #[error("not found: {0}")]
    NotFound(String),
    /// This caller may not call the method.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The service could not answer now; `retry_after` when it said how long to wait.
    #[error("unavailable: {message}")]
    Unavailable {
        /// The server's (or transport's) message.
        message: String,
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
    /// A rate limit or load shedding refused the call before doing anything.
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// The server's message.
        message: String,
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
    /// The call's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// Any other status.
    #[error("{}: {}", .0.code(), .0.message())]
    Other(Status),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl PdmError {
    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } | Self::ResourceExhausted { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The bad fields of an INVALID_ARGUMENT (empty otherwise).
    pub fn field_violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument { violations } => violations,
            _ => &[],
        }
    }
}

impl From<Status> for PdmError {
    fn from(status: Status) -> Self {
        let details = status.get_error_details();
        let retry_after = details.retry_info().and_then(|r| r.retry_delay);
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => Self::InvalidArgument {
                violations: details
                    .bad_request()
                    .map(|b| {
                        b.field_violations
                            .iter()
                            .map(|v| FieldViolation {
                                field: v.field.clone(),
                                description: v.description.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Code::FailedPrecondition => Self::FailedPrecondition {
                message,
                preconditions: details
                    .precondition_failure()
                    .map(|p| {
                        p.violations
                            .iter()
                            .map(|v| Precondition {
                                kind: v.r#type.clone(),
                                subject: v.subject.clone(),
                                description: v.description.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Code::NotFound => Self::NotFound(message),
            Code::PermissionDenied | Code::Unauthenticated => Self::PermissionDenied(message),
            Code::Unavailable => Self::Unavailable {
                message,
                retry_after,
            },
            Code::ResourceExhausted => Self::ResourceExhausted {
                message,
                retry_after,
            },
            Code::DeadlineExceeded => Self::DeadlineExceeded,
            _ => Self::Other(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    #[test]
    fn field_violations_and_retry_delays_come_from_the_details() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "bad",
            ErrorDetails::with_bad_request(vec![
                tonic_types::FieldViolation::new("subject_id", "not a UUID"),
                tonic_types::FieldViolation::new("at_least", "not a consistency token"),
            ]),
        );
        let err = PdmError::from(status);
        let fields: Vec<&str> = err
            .field_violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["subject_id", "at_least"]);
        assert!(err.to_string().contains("subject_id: not a UUID"), "{err}");

        let status = Status::with_error_details(
            Code::Unavailable,
            "behind",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(100))),
        );
        assert_eq!(
            PdmError::from(status).retry_after(),
            Some(Duration::from_millis(100))
        );
        assert!(matches!(
            PdmError::from(Status::deadline_exceeded("late")),
            PdmError::DeadlineExceeded
        ));
    }
}
