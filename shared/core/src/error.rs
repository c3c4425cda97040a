//! Building `tonic::Status` values the same way in every service: bad input as
//! `INVALID_ARGUMENT` with one `BadRequest` field violation per bad field, and internal
//! failures reported with an opaque id, their details logged without SQL or personal data.

use sea_orm::{DbErr, RuntimeErr};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Most field violations one error carries; the rest are counted in its message.
pub const MAX_VIOLATIONS: usize = 50;
/// Longest field path kept in a violation.
const MAX_FIELD_CHARS: usize = 100;
/// Longest description kept in a violation.
const MAX_DESCRIPTION_CHARS: usize = 120;
/// How much of the message lists field names.
const MAX_MESSAGE_FIELDS_BYTES: usize = 1000;

/// `text` cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Collects the problems of a request, field by field, so the caller hears about all of
/// them at once.
#[derive(Debug, Default)]
pub struct FieldViolations {
    violations: Vec<FieldViolation>,
}

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field` (a proto field path such as `billing_contact.email`).
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field, description));
    }

    /// Keeps the value of a parse, or records its error against `field`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problem) => {
                self.add(field, problem.to_string());
                None
            }
        }
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok` when no problem was recorded, else `INVALID_ARGUMENT` carrying them, at most
    /// [`MAX_VIOLATIONS`] (the message says how many more there were): common clients
    /// refuse trailers past 16 KiB, and would see `RESOURCE_EXHAUSTED` instead.
    pub fn finish(mut self) -> Result<(), Status> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let more = self.violations.len().saturating_sub(MAX_VIOLATIONS);
        self.violations.truncate(MAX_VIOLATIONS);
        for v in &mut self.violations {
            v.field = clip(&v.field, MAX_FIELD_CHARS);
            v.description = clip(&v.description, MAX_DESCRIPTION_CHARS);
        }
        let mut fields: Vec<&str> = Vec::new();
        let mut listed = 0;
        for v in &self.violations {
            listed += v.field.len() + 2;
            if listed > MAX_MESSAGE_FIELDS_BYTES {
                break;
            }
            fields.push(v.field.as_str());
        }
        let unnamed = self.violations.len() - fields.len() + more;
        let mut message = format!("invalid request: {}", fields.join(", "));
        if unnamed > 0 {
            message.push_str(&format!(" and {unnamed} more"));
        }
        if more > 0 {
            message.push_str(&format!(
                " ({} violations in all; the first {MAX_VIOLATIONS} are detailed)",
                MAX_VIOLATIONS + more
            ));
        }
        Err(Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(self.violations),
        ))
    }
}

/// `INVALID_ARGUMENT` for a single bad field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let mut v = FieldViolations::new();
    v.add(field, description);
    match v.finish() {
        Err(status) => status,
        Ok(()) => Status::invalid_argument(field.to_owned()),
    }
}

/// `FAILED_PRECONDITION` with a `PreconditionFailure` detail (`kind`, `subject`, why).
pub fn failed_precondition(kind: &str, subject: &str, description: &str) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        description.to_owned(),
        ErrorDetails::with_precondition_failure_violation(kind, subject, description),
    )
}

/// `RESOURCE_EXHAUSTED` with a `RetryInfo` detail.
pub fn retry_after(message: &str, delay: std::time::Duration) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        message.to_owned(),
        ErrorDetails::with_retry_info(Some(delay)),
    )
}

/// Reports an unexpected failure: logs `kind` with an error id (never the error's text,
/// which may hold SQL or personal data) and answers `INTERNAL` with the same id.
pub fn internal(context: &'static str, kind: &str) -> Status {
    let error_id = uuid::Uuid::now_v7();
    tracing::error!(%error_id, context, kind, "internal error");
    Status::internal(format!("internal error (id {error_id})"))
}

/// Maps a database error: connection trouble is `UNAVAILABLE` (callers retry), the rest
/// `INTERNAL`. Only the error's class and SQLSTATE are logged.
pub fn database(context: &'static str, err: &DbErr) -> Status {
    let kind = db_error_kind(err);
    if is_unavailable(err) {
        let error_id = uuid::Uuid::now_v7();
        tracing::warn!(%error_id, context, kind, "database unavailable");
        return Status::unavailable(format!("database unavailable (id {error_id})"));
    }
    internal(context, &kind)
}

/// Whether the error means the database could not be reached.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                sea_orm::sqlx::Error::Io(_)
                    | sea_orm::sqlx::Error::PoolTimedOut
                    | sea_orm::sqlx::Error::PoolClosed
                    | sea_orm::sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    }
}

/// Whether the error is a unique-constraint violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A description of a database error that holds no values: its class and SQLSTATE.
pub fn db_error_kind(err: &DbErr) -> String {
    let class = match err {
        DbErr::ConnectionAcquire(_) => "connection_acquire",
        DbErr::Conn(_) => "connection",
        DbErr::Exec(_) => "exec",
        DbErr::Query(_) => "query",
        DbErr::RecordNotFound(_) => "record_not_found",
        DbErr::RecordNotInserted => "record_not_inserted",
        DbErr::RecordNotUpdated => "record_not_updated",
        DbErr::Migration(_) => "migration",
        DbErr::Type(_) => "type",
        DbErr::Json(_) => "json",
        _ => "other",
    };
    let code = match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned())),
        _ => None,
    };
    match code {
        Some(code) => format!("{class} (sqlstate {code})"),
        None => class.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_one_invalid_argument_with_every_field() {
        let mut v = FieldViolations::new();
        v.add("email", "not an email address");
        assert_eq!(v.check::<u8, _>("age", "x".parse::<u8>()), None);
        let status = v.finish().expect_err("two violations");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<_> = details
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "age"]);
    }

    #[test]
    fn a_thousand_violations_fit_in_the_trailers_common_clients_accept() {
        let mut v = FieldViolations::new();
        for i in 0..1000 {
            v.add(
                format!("events[{i}].feature"),
                "must not contain a payment card number",
            );
        }
        let status = v.finish().expect_err("violations");
        let details = status
            .get_details_bad_request()
            .expect("bad request details");
        assert_eq!(details.field_violations.len(), MAX_VIOLATIONS);
        assert!(
            status.message().contains("1000 violations in all"),
            "{}",
            status.message()
        );
        let mut headers = http::HeaderMap::new();
        status.add_header(&mut headers).expect("valid headers");
        let size: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        assert!(size < 16 * 1024, "{size} bytes of trailers");
    }

    #[test]
    fn no_violations_is_ok() {
        assert!(FieldViolations::new().finish().is_ok());
    }

    #[test]
    fn internal_errors_do_not_carry_the_error_text() {
        let status = database(
            "test",
            &DbErr::Custom("select * from secret where email='a@b.c'".into()),
        );
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("a@b.c"));
        assert!(!status.message().contains("select"));
    }
}
