//! `SubjectDataService.ListSubjectsHeld` (issue 21), one implementation for every data
//! service: which subjects a service held data of a category for within a window, ids
//! only, so the incident register knows who a breach touched without copying their data.
//! Each service says which of its tables (and which column says since when a row is
//! held) answer for each category it holds; other categories answer nothing.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use pdm_access_trail::Accessed;
use pdm_proto::subject::v1::{ListSubjectsHeldRequest, ListSubjectsHeldResponse};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio_stream::Stream;
use tonic::{Response, Status};

use crate::{FieldViolations, SubjectId, convert::from_timestamp, ids::check_request_id};

/// Subject ids one call answers at most (`page_size`).
pub const HELD_MAX: u32 = 10_000;
/// Subject ids one call answers when `page_size` is 0.
const HELD_DEFAULT: u32 = 1000;
/// Subject ids per streamed message.
const HELD_BATCH: usize = 500;
/// The longest category key.
const CATEGORY_MAX: usize = 128;

/// The stream `ListSubjectsHeld` answers with.
pub type HeldStream = Pin<Box<dyn Stream<Item = Result<ListSubjectsHeldResponse, Status>> + Send>>;

/// Where a service holds a category: the table, and its column saying since when a row
/// is held. Both are constants of the service, never input.
pub type HeldTable = (&'static str, &'static str);

/// A checked `ListSubjectsHeldRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The incident asking: the access trail's purpose.
    pub incident_id: String,
    /// The category key.
    pub category: String,
    /// The window's end.
    pub end: DateTime<Utc>,
    /// Answer ids after this one (paging); empty: from the start.
    pub after: String,
    /// At most this many ids.
    pub limit: u64,
}

/// Checks a `ListSubjectsHeldRequest`, a field violation per bad field.
pub fn held_request(r: &ListSubjectsHeldRequest) -> Result<Held, Status> {
    let mut v = FieldViolations::new();
    v.check("incident_id", check_request_id(&r.incident_id));
    if r.category.is_empty() {
        v.add("category", "required");
    } else if !is_category_key(&r.category) {
        v.add(
            "category",
            "a category key: at most 128 lower-case letters, '.' or '_'",
        );
    }
    let mut time = |field: &str, ts: Option<&prost_types::Timestamp>| match ts {
        None => {
            v.add(field, "required");
            None
        }
        Some(ts) => {
            let t = from_timestamp(ts);
            if t.is_none() {
                v.add(field, "not a valid time");
            }
            t
        }
    };
    let start = time("window_start", r.window_start.as_ref());
    let end = time("window_end", r.window_end.as_ref());
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        v.add("window_end", "must be after window_start");
    }
    if !r.after_subject_id.is_empty() {
        v.check("after_subject_id", r.after_subject_id.parse::<SubjectId>());
    }
    if r.page_size > HELD_MAX {
        v.add("page_size", "at most 10000");
    }
    v.finish()?;
    let end = end.ok_or_else(|| Status::internal("validated window missing"))?;
    let page = if r.page_size == 0 {
        HELD_DEFAULT
    } else {
        r.page_size
    };
    Ok(Held {
        incident_id: r.incident_id.clone(),
        category: r.category.clone(),
        end,
        after: r.after_subject_id.clone(),
        limit: u64::from(page),
    })
}

/// A category key: lower-case letters, '.' and '_', starting with a letter.
fn is_category_key(s: &str) -> bool {
    s.len() <= CATEGORY_MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

/// Answers a `ListSubjectsHeld` call from the service's database: `held_table` maps the
/// category to where the service holds it (`None`: not held here, nobody answered). The
/// answer carries one access-trail entry per subject listed, the incident as its purpose.
pub async fn list_subjects_held(
    db: &DatabaseConnection,
    service: &'static str,
    request: &ListSubjectsHeldRequest,
    held_table: impl Fn(&str) -> Option<HeldTable>,
) -> Result<Response<HeldStream>, Status> {
    let held = held_request(request)?;
    let ids = match held_table(&held.category) {
        Some(table) => subjects_held(db, table, &held)
            .await
            .map_err(|e| crate::error::database(service, &e))?,
        None => Vec::new(),
    };
    tracing::info!(incident_id = %held.incident_id, category = %held.category, count = ids.len(), "subjects held listed");
    let batches: Vec<Result<ListSubjectsHeldResponse, Status>> = ids
        .chunks(HELD_BATCH)
        .map(|c| {
            Ok(ListSubjectsHeldResponse {
                subject_ids: c.to_vec(),
            })
        })
        .collect();
    let mut response = Response::new(Box::pin(tokio_stream::iter(batches)) as HeldStream);
    if !ids.is_empty() {
        response.extensions_mut().insert(Accessed {
            subjects: ids,
            purpose: held.incident_id,
        });
    }
    Ok(response)
}

/// Subject ids with a row in the table held since before the window's end, after
/// `held.after`, in id order, at most `held.limit`. Rows still held now were held from
/// their `since` on; rows deleted since (erased, purged) are no longer known, and
/// pseudonymised rows (`erased:…`) name nobody.
async fn subjects_held(
    db: &DatabaseConnection,
    (table, since): HeldTable,
    held: &Held,
) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let (p1, p2) = if backend == DbBackend::Postgres {
        ("$1", "$2")
    } else {
        ("?", "?")
    };
    let limit = held.limit;
    let sql = format!(
        "SELECT DISTINCT subject_id FROM {table} WHERE {since} < {p1} AND subject_id > {p2} \
         AND subject_id NOT LIKE 'erased:%' ORDER BY subject_id LIMIT {limit}"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [held.end.into(), held.after.clone().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "subject_id"))
        .collect()
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    fn request() -> ListSubjectsHeldRequest {
        ListSubjectsHeldRequest {
            incident_id: "inc-1".to_owned(),
            category: "telemetry.event".to_owned(),
            window_start: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            window_end: Some(Timestamp {
                seconds: 1_700_086_400,
                nanos: 0,
            }),
            after_subject_id: String::new(),
            page_size: 0,
        }
    }

    fn violations(status: &Status) -> Vec<String> {
        use tonic_types::StatusExt as _;
        status
            .get_details_bad_request()
            .expect("a BadRequest detail")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_good_request_pages_by_the_default() {
        let held = held_request(&request()).unwrap();
        assert_eq!(held.limit, u64::from(HELD_DEFAULT));
        assert_eq!(held.end.timestamp(), 1_700_086_400);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut r = request();
        r.incident_id = String::new();
        r.category = "card numbers!".to_owned();
        r.window_end = r.window_start;
        r.after_subject_id = "not-a-subject".to_owned();
        r.page_size = HELD_MAX + 1;
        let status = held_request(&r).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            violations(&status),
            [
                "incident_id",
                "category",
                "window_end",
                "after_subject_id",
                "page_size"
            ]
        );
    }

    #[test]
    fn a_missing_window_is_named_per_end() {
        let mut r = request();
        r.window_start = None;
        r.window_end = None;
        let status = held_request(&r).unwrap_err();
        assert_eq!(violations(&status), ["window_start", "window_end"]);
    }

    #[test]
    fn category_keys_are_letters_dots_and_underscores() {
        assert!(is_category_key("account.profile"));
        assert!(is_category_key("consent.subject_link"));
        assert!(!is_category_key("Account"));
        assert!(!is_category_key(".x"));
        assert!(!is_category_key("card_numbers4"));
        assert!(!is_category_key(&"a".repeat(129)));
    }
}
