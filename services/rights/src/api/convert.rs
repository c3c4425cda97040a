//! Rows to protobuf messages.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use pdm_proto::{
    rights::v1::{self as pb, Regime, RequestKind, Status},
    subject::v1::ErasureReceipt,
};
use pdm_runtime::convert::timestamp;
use prost::Message;

use crate::{
    domain::refusal,
    store::entities::{request, task},
};

/// Whether a request is still open.
pub fn open(status: &str) -> bool {
    matches!(
        status,
        "STATUS_IN_PROGRESS" | "STATUS_VERIFICATION_REQUIRED"
    )
}

pub fn task(t: task::Model) -> pb::Task {
    let receipt = if t.action == "erase" {
        t.result
            .as_deref()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|b| ErasureReceipt::decode(b.as_slice()).ok())
    } else {
        None
    };
    pb::Task {
        service: t.service,
        action: t.action,
        status: t.status,
        attempts: t.attempts,
        last_error: t.last_error.unwrap_or_default(),
        done_at: t.done_at.map(timestamp),
        receipt,
    }
}

pub fn request(
    r: request::Model,
    tasks: Vec<task::Model>,
    now: DateTime<Utc>,
) -> pb::DataSubjectRequest {
    let verified = r.verified_at.is_some();
    let regime = Regime::from_str_name(&r.regime).unwrap_or_default();
    // A refused request carries its reasons and where to complain, as the subject was told.
    let refusal = (r.status == Status::Denied.as_str_name()).then(|| pb::Refusal {
        reasons: refusal::split(r.outcome_reason.as_deref().unwrap_or_default()),
        right_to_complain: refusal::right_to_complain(regime),
        notified_at: None,
    });
    pb::DataSubjectRequest {
        overdue: open(&r.status) && r.due_at < now,
        request_id: r.request_id,
        kind: RequestKind::from_str_name(&r.kind).unwrap_or_default() as i32,
        regime: regime as i32,
        // An unverified request never shows which subject it claims.
        subject_id: if verified {
            r.subject_id.unwrap_or_default()
        } else {
            String::new()
        },
        status: Status::from_str_name(&r.status).unwrap_or_default() as i32,
        received_at: Some(timestamp(r.received_at)),
        verified_at: r.verified_at.map(timestamp),
        due_at: Some(timestamp(r.due_at)),
        original_due_at: Some(timestamp(r.original_due_at)),
        extension_reason: r.extension_reason.unwrap_or_default(),
        confirm_by: r.confirm_by.map(timestamp),
        closed_at: r.closed_at.map(timestamp),
        outcome_reason: r.outcome_reason.unwrap_or_default(),
        concerns_child: r.priority > 0,
        tasks: tasks.into_iter().map(task).collect(),
        package_expires_at: r.package_expires_at.map(timestamp),
        download_token: String::new(),
        refusal,
        deletion_reason: r.deletion_reason.unwrap_or_default(),
    }
}
