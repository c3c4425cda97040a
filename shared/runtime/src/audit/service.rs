//! `pdm.audit.v1.AuditService`: verify a service's trail, list a subject's accesses.

use pdm_proto::audit::v1::{self as pb, audit_service_server::AuditService, problem::Kind};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::{
    chain::{ChainedEntry, Tamper, Verifier},
    store,
};
use crate::{FieldViolations, SubjectId, convert::timestamp, error};

/// Entries read per page while verifying.
const VERIFY_PAGE: u64 = 10_000;
/// Problems listed at most.
const MAX_PROBLEMS: usize = 1_000;
/// Default and largest page of accesses.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// The audit API of one service.
#[derive(Debug, Clone)]
pub struct AuditApi {
    db: DatabaseConnection,
    service: &'static str,
}

impl AuditApi {
    /// The API over `service`'s trail in `db`.
    pub fn new(db: DatabaseConnection, service: &'static str) -> Self {
        Self { db, service }
    }
}

fn problem(t: Tamper) -> pb::Problem {
    let kind = match t {
        Tamper::Edited(_) => Kind::Edited,
        Tamper::Missing(_) => Kind::Missing,
        Tamper::BrokenLink(_) => Kind::BrokenLink,
        Tamper::Truncated(_) => Kind::Truncated,
    };
    pb::Problem {
        seq: t.seq(),
        kind: kind as i32,
        description: t.to_string(),
    }
}

impl AuditApi {
    fn access(&self, c: ChainedEntry) -> pb::Access {
        pb::Access {
            at: Some(timestamp(c.entry.at)),
            caller: c.entry.caller,
            method: c.entry.method,
            purpose: c.entry.purpose,
            trace_id: c.entry.trace_id,
            service: self.service.to_owned(),
            seq: c.seq,
        }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn verify_access_log(
        &self,
        _request: Request<pb::VerifyAccessLogRequest>,
    ) -> Result<Response<pb::VerifyAccessLogResponse>, Status> {
        // The head first: entries appended while we read are after it and not checked.
        let head = store::head(&self.db)
            .await
            .map_err(|e| error::database("reading the access trail head", &e))?;
        let last = head.as_ref().map_or(0, |(seq, _)| *seq);
        let mut verifier = Verifier::default();
        let mut after = i64::MIN;
        'pages: loop {
            let page = store::page(&self.db, after, VERIFY_PAGE)
                .await
                .map_err(|e| error::database("reading the access trail", &e))?;
            let Some(end) = page.last().map(|c| c.seq) else {
                break;
            };
            for entry in &page {
                if entry.seq > last {
                    break 'pages;
                }
                verifier.push(entry);
            }
            after = end;
        }
        let (entries, problems) = verifier.finish(head);
        let truncated = problems.len() > MAX_PROBLEMS;
        if !problems.is_empty() {
            tracing::warn!(
                service = self.service,
                problems = problems.len(),
                "the access trail failed verification"
            );
        }
        Ok(Response::new(pb::VerifyAccessLogResponse {
            service: self.service.to_owned(),
            entries,
            intact: problems.is_empty(),
            problems: problems
                .into_iter()
                .take(MAX_PROBLEMS)
                .map(problem)
                .collect(),
            truncated,
        }))
    }

    async fn list_accesses(
        &self,
        request: Request<pb::ListAccessesRequest>,
    ) -> Result<Response<pb::ListAccessesResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let subject = violations.check("subject_id", request.subject_id.parse::<SubjectId>());
        if request.page_size > MAX_PAGE {
            violations.add("page_size", format!("at most {MAX_PAGE}"));
        }
        let after = if request.page_token.is_empty() {
            0
        } else {
            match request.page_token.parse::<i64>() {
                Ok(seq) if seq >= 0 => seq,
                _ => {
                    violations.add("page_token", "not a token from a previous page");
                    0
                }
            }
        };
        violations.finish()?;
        let subject = subject.ok_or_else(|| Status::internal("subject id"))?;
        let size = if request.page_size == 0 {
            DEFAULT_PAGE
        } else {
            request.page_size
        };
        let mut rows =
            store::of_subject(&self.db, &subject.to_string(), after, u64::from(size) + 1)
                .await
                .map_err(|e| error::database("reading the access trail", &e))?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let next_page_token = if more {
            rows.last().map(|c| c.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAccessesResponse {
            accesses: rows.into_iter().map(|c| self.access(c)).collect(),
            next_page_token,
        }))
    }
}
