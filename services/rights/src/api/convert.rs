//! Rows to protobuf messages.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use pdm_proto::{
    rights::v1::{self as pb, Regime, RequestKind, Status},
    subject::v1::ErasureReceipt,
};
use pdm_runtime::convert::timestamp;
use prost::Message;
use sea_orm::ActiveEnum;

use crate::{
    domain::{delivery, refusal},
    store::{
        RequestStatus,
        entities::{outbox, request, task},
    },
};

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
        status: t.status.to_value(),
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
    let refusal = (r.status == RequestStatus::Denied).then(|| pb::Refusal {
        reasons: refusal::split(r.outcome_reason.as_deref().unwrap_or_default()),
        right_to_complain: refusal::right_to_complain(regime),
        notified_at: None,
    });
    pb::DataSubjectRequest {
        overdue: r.status.is_open() && r.due_at < now,
        request_id: r.request_id,
        kind: RequestKind::from_str_name(&r.kind).unwrap_or_default() as i32,
        regime: regime as i32,
        // An unverified request never shows which subject it claims.
        subject_id: if verified {
            r.subject_id.unwrap_or_default()
        } else {
            String::new()
        },
        status: Status::from(r.status) as i32,
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
        messages: Vec::new(),
    }
}

/// How a message to the subject fared: its state, attempts and last error's category
/// (the row keeps no address once it leaves the pending state, and none is shown here).
pub fn message(m: outbox::Model) -> pb::MessageDelivery {
    let status = pb::DeliveryStatus::from(m.status);
    let pending = status == pb::DeliveryStatus::Pending;
    let last_error = if status == pb::DeliveryStatus::Sent {
        None
    } else {
        m.last_error
            .as_deref()
            .and_then(delivery::ErrorCategory::parse)
    };
    pb::MessageDelivery {
        topic: m.topic,
        status: status as i32,
        attempts: m.attempts,
        last_error: last_error.map_or(pb::DeliveryError::Unspecified, delivery_error) as i32,
        queued_at: Some(timestamp(m.created_at)),
        sent_at: m.sent_at.map(timestamp),
        next_attempt_at: m.next_attempt_at.filter(|_| pending).map(timestamp),
    }
}

fn delivery_error(category: delivery::ErrorCategory) -> pb::DeliveryError {
    use delivery::ErrorCategory as C;
    match category {
        C::Connect => pb::DeliveryError::Connect,
        C::Tls => pb::DeliveryError::Tls,
        C::Auth => pb::DeliveryError::Auth,
        C::Sender => pb::DeliveryError::Sender,
        C::Recipient => pb::DeliveryError::Recipient,
        C::Message => pb::DeliveryError::Message,
        C::Deferred => pb::DeliveryError::Deferred,
        C::Protocol => pb::DeliveryError::Protocol,
        C::Timeout => pb::DeliveryError::Timeout,
        C::Local => pb::DeliveryError::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageStatus;

    fn row(status: MessageStatus, last_error: Option<&str>) -> outbox::Model {
        outbox::Model {
            message_id: "m1".into(),
            request_id: "r1".into(),
            topic: "completed".into(),
            recipient: None,
            body: Vec::new(),
            status,
            attempts: 3,
            created_at: Utc::now(),
            sent_at: None,
            file_key: None,
            next_attempt_at: Some(Utc::now()),
            last_error: last_error.map(str::to_owned),
            notice_id: None,
        }
    }

    #[test]
    fn every_error_category_has_its_own_proto_value() {
        let mut seen = std::collections::HashSet::new();
        for c in delivery::ErrorCategory::ALL {
            let e = delivery_error(c);
            assert_ne!(e, pb::DeliveryError::Unspecified);
            // The proto names the same thing: DELIVERY_ERROR_<CATEGORY>.
            assert_eq!(
                e.as_str_name(),
                format!("DELIVERY_ERROR_{}", c.as_str().to_uppercase())
            );
            assert!(seen.insert(e));
        }
    }

    #[test]
    fn a_message_shows_its_state_and_error_category_only() {
        let failed = message(row(MessageStatus::Failed, Some("tls")));
        assert_eq!(failed.status, pb::DeliveryStatus::Failed as i32);
        assert_eq!(failed.last_error, pb::DeliveryError::Tls as i32);
        assert_eq!(failed.attempts, 3);
        assert!(
            failed.next_attempt_at.is_none(),
            "no next attempt once failed"
        );
        let waiting = message(row(MessageStatus::Pending, Some("deferred")));
        assert_eq!(waiting.last_error, pb::DeliveryError::Deferred as i32);
        assert!(waiting.next_attempt_at.is_some());
        let sent = message(row(MessageStatus::Sent, Some("deferred")));
        assert_eq!(sent.last_error, pb::DeliveryError::Unspecified as i32);
        let odd = message(row(MessageStatus::Pending, Some("550 ada@example.org")));
        assert_eq!(odd.last_error, pb::DeliveryError::Unspecified as i32);
    }
}
