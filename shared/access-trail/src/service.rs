//! `pdm.audit.v1.AuditService`: verify a service's trail (against what witnesses saw and
//! a checkpoint), list a subject's accesses, witness another service's head, sign this
//! service's head.

use pdm_proto::audit::v1::{self as pb, audit_service_server::AuditService, problem::Kind};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::{
    Trail,
    chain::{ChainedEntry, Expected, Seal, Tamper, Verifier},
    checkpoint::Head,
    keys::AuditKeys,
    store,
    witness::{MAC_LEN, witness_entry, witnessed_head},
};
use pdm_tls::identity::Caller;

use pdm_core::{
    FieldViolations, SubjectId,
    clock::SharedClock,
    convert::{from_timestamp, timestamp},
    error,
};

/// Entries read per page while verifying.
const VERIFY_PAGE: u64 = 10_000;
/// Problems listed at most.
const MAX_PROBLEMS: usize = 1_000;
/// Default and largest page of accesses.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;
/// Default and largest page of witnessed heads.
const DEFAULT_WITNESS_PAGE: u32 = 1_000;
const MAX_WITNESS_PAGE: u32 = 10_000;
/// Witnessed heads a verification takes at most.
const MAX_WITNESSED: usize = 100_000;

/// The audit API of one service.
#[derive(Debug, Clone)]
pub struct AuditApi {
    db: DatabaseConnection,
    service: &'static str,
    keys: AuditKeys,
    trail: Trail,
    clock: SharedClock,
}

impl AuditApi {
    /// The API over `service`'s trail in `db`, under `keys`; witnessed heads of other
    /// services go into `trail`.
    pub fn new(
        db: DatabaseConnection,
        service: &'static str,
        keys: AuditKeys,
        trail: Trail,
        clock: SharedClock,
    ) -> Self {
        Self {
            db,
            service,
            keys,
            trail,
            clock,
        }
    }
}

fn problem(t: Tamper) -> pb::Problem {
    let kind = match t {
        Tamper::Edited(_) => Kind::Edited,
        Tamper::Missing(_) => Kind::Missing,
        Tamper::BrokenLink(_) => Kind::BrokenLink,
        Tamper::Truncated(_) => Kind::Truncated,
        Tamper::RolledBack { .. } => Kind::RolledBack,
        Tamper::Rewritten { .. } => Kind::Rewritten,
        Tamper::ForgedCheckpoint => Kind::ForgedCheckpoint,
    };
    pb::Problem {
        seq: t.seq(),
        kind: kind as i32,
        description: t.to_string(),
    }
}

/// Checks a head's MAC: 32 bytes, or none for the empty trail.
fn check_mac(violations: &mut FieldViolations, field: &str, seq: i64, mac: &[u8]) {
    if seq < 0 {
        violations.add(format!("{field}.seq"), "must not be negative");
    } else if (seq == 0 && !mac.is_empty()) || (seq > 0 && mac.len() != MAC_LEN) {
        violations.add(
            format!("{field}.mac"),
            format!("{MAC_LEN} bytes (none when seq is 0)"),
        );
    }
}

/// The heads a verification must meet, from the request; a checkpoint whose signature
/// does not verify is left out and reported by the returned flag.
fn expected(
    request: &pb::VerifyAccessLogRequest,
    service: &str,
    keys: &AuditKeys,
) -> Result<(Vec<Expected>, bool), Status> {
    let mut violations = FieldViolations::new();
    if request.witnessed.len() > MAX_WITNESSED {
        violations.add("witnessed", format!("at most {MAX_WITNESSED}"));
    }
    let mut out = Vec::new();
    for (i, w) in request.witnessed.iter().enumerate().take(MAX_WITNESSED) {
        let field = format!("witnessed[{i}]");
        check_mac(&mut violations, &field, w.seq, &w.mac);
        if !is_service_name(&w.witness) {
            violations.add(format!("{field}.witness"), "a service's name");
        }
        out.push(Expected {
            seq: w.seq,
            mac: w.mac.clone(),
            by: format!("witness {}", w.witness),
            at: w.at.as_ref().and_then(from_timestamp),
        });
    }
    let mut forged = false;
    if let Some(c) = &request.checkpoint {
        if c.service != service {
            violations.add("checkpoint.service", format!("must be {service}"));
        }
        check_mac(&mut violations, "checkpoint", c.seq, &c.mac);
        match c.at.as_ref().and_then(from_timestamp) {
            None => violations.add("checkpoint.at", "required"),
            Some(at) => {
                let head = Head {
                    service: c.service.clone(),
                    seq: c.seq,
                    mac: c.mac.clone(),
                    at,
                };
                if head.verify(&keys.checkpoint, &c.signature) {
                    out.push(Expected {
                        seq: c.seq,
                        mac: c.mac.clone(),
                        by: format!(
                            "the checkpoint of {}",
                            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                        at: Some(at),
                    });
                } else {
                    forged = true;
                }
            }
        }
    }
    violations.finish()?;
    Ok((out, forged))
}

/// Whether `name` names a service of the mesh (never a card number: the guard of every
/// free-text field applies to names too).
fn is_service_name(name: &str) -> bool {
    matches!(Caller::from_name(name), Some(Caller::Service(_)))
        && !pdm_core::text::contains_card_number(name)
}

/// A page token: the position after which the next page starts.
fn page_after(violations: &mut FieldViolations, token: &str) -> i64 {
    if token.is_empty() {
        return 0;
    }
    if pdm_core::text::contains_card_number(token) {
        violations.add("page_token", "not a token from a previous page");
        return 0;
    }
    match token.parse::<i64>() {
        Ok(seq) if seq >= 0 => seq,
        _ => {
            violations.add("page_token", "not a token from a previous page");
            0
        }
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
        request: Request<pb::VerifyAccessLogRequest>,
    ) -> Result<Response<pb::VerifyAccessLogResponse>, Status> {
        let (expected, forged) = expected(request.get_ref(), self.service, &self.keys)?;
        // The head first: entries appended while we read are after it and not checked.
        let head = store::head(&self.db)
            .await
            .map_err(|e| error::database("reading the access trail head", &e))?;
        let last = head.as_ref().map_or(0, |(seq, _)| *seq);
        let mut verifier = Verifier::new(Seal::Keyed(self.keys.chain.clone()), expected);
        if forged {
            verifier.forged_checkpoint();
        }
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
        let after = page_after(&mut violations, &request.page_token);
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

    async fn witness_head(
        &self,
        request: Request<pb::WitnessHeadRequest>,
    ) -> Result<Response<pb::WitnessHeadResponse>, Status> {
        // The witnessed service is the one the certificate names, never a field: a
        // service can only have its own head recorded.
        let reporter = match request.extensions().get::<Caller>() {
            Some(Caller::Service(name)) => name.clone(),
            _ => {
                return Err(Status::permission_denied(
                    "only another service of the mesh has its head witnessed",
                ));
            }
        };
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        if request.seq < 1 {
            violations.add("seq", "must be at least 1");
        } else {
            check_mac(&mut violations, "head", request.seq, &request.mac);
        }
        violations.finish()?;
        self.trail
            .record(witness_entry(
                &reporter,
                request.seq,
                &request.mac,
                self.clock.now(),
                String::new(),
            ))
            .await;
        Ok(Response::new(pb::WitnessHeadResponse {
            witness: self.service.to_owned(),
        }))
    }

    async fn list_witnessed_heads(
        &self,
        request: Request<pb::ListWitnessedHeadsRequest>,
    ) -> Result<Response<pb::ListWitnessedHeadsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        if !is_service_name(&request.service) {
            violations.add("service", "a service's name");
        }
        if request.page_size > MAX_WITNESS_PAGE {
            violations.add("page_size", format!("at most {MAX_WITNESS_PAGE}"));
        }
        let after = page_after(&mut violations, &request.page_token);
        violations.finish()?;
        let size = if request.page_size == 0 {
            DEFAULT_WITNESS_PAGE
        } else {
            request.page_size
        };
        let mut rows = store::witnessed(&self.db, &request.service, after, u64::from(size) + 1)
            .await
            .map_err(|e| error::database("reading witnessed heads", &e))?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let next_page_token = if more {
            rows.last().map(|c| c.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListWitnessedHeadsResponse {
            heads: rows
                .iter()
                .filter_map(witnessed_head)
                .map(|(seq, mac, at)| pb::WitnessedHead {
                    seq,
                    mac,
                    at: Some(timestamp(at)),
                    witness: self.service.to_owned(),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_signed_head(
        &self,
        _request: Request<pb::GetSignedHeadRequest>,
    ) -> Result<Response<pb::GetSignedHeadResponse>, Status> {
        let (seq, mac) = store::head(&self.db)
            .await
            .map_err(|e| error::database("reading the access trail head", &e))?
            .unwrap_or_default();
        let head = Head {
            service: self.service.to_owned(),
            seq,
            mac,
            at: self.clock.now(),
        };
        let signature = head.sign(&self.keys.checkpoint);
        Ok(Response::new(pb::GetSignedHeadResponse {
            head: Some(pb::SignedHead {
                service: head.service,
                seq: head.seq,
                mac: head.mac,
                at: Some(timestamp(head.at)),
                signature,
            }),
        }))
    }
}
