//! Store records to protobuf messages.

use pdm_proto::{
    identity::v1 as pb,
    subject::v1::{self as subject_pb},
};
use pdm_runtime::convert::timestamp;

use crate::store::{Billing, Profile, Ticket};

/// The service name in receipts and exports.
pub const SERVICE: &str = "identity";

pub fn account(p: Profile) -> pb::Account {
    pb::Account {
        subject_id: p.subject_id,
        first_name: p.first_name,
        last_name: p.last_name,
        email: p.email,
        phone: p.phone.unwrap_or_default(),
        region: p.region as i32,
        birth_date: p.birth_date.unwrap_or_default(),
        has_photo: p.has_photo,
        restricted: p.restricted,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

pub fn billing(b: Billing) -> pb::BillingContact {
    pb::BillingContact {
        name: b.name,
        email: b.email,
        phone: b.phone.unwrap_or_default(),
        payment_processor_ref: b.processor_ref,
    }
}

pub fn ticket(t: Ticket) -> pb::SupportTicket {
    pb::SupportTicket {
        ticket_id: t.ticket_id,
        subject_id: t.subject_id,
        contact: t.contact,
        summary: t.summary,
        description: t.description,
        attachments: t
            .attachments
            .into_iter()
            .map(|a| pb::TicketAttachment {
                file_name: a.file_name,
                content_type: a.content_type,
                content: a.content.unwrap_or_default(),
                size_bytes: a.size_bytes,
                special_categories: a.special_categories.iter().map(|c| *c as i32).collect(),
            })
            .collect(),
        created_at: Some(timestamp(t.created_at)),
        special_categories: t.special_categories.iter().map(|c| *c as i32).collect(),
    }
}

pub fn record(r: crate::store::ExportRecord) -> subject_pb::SubjectRecord {
    subject_pb::SubjectRecord {
        service: SERVICE.to_owned(),
        category: r.category.key.to_owned(),
        record_id: r.record_id,
        purposes: r
            .category
            .purposes
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        legal_basis: r.category.legal_basis as i32,
        source: r.category.source.to_owned(),
        retention: Some(subject_pb::Retention {
            rule: r.category.retention.to_owned(),
            delete_after: r.delete_after.map(timestamp),
        }),
        recipients: Vec::new(),
        data: Some(pdm_runtime::convert::json_to_struct(r.data)),
        attachment: r
            .attachment
            .map(|(name, content_type, content)| subject_pb::Attachment {
                name,
                content_type,
                content,
            }),
        created_at: r.created_at.map(timestamp),
    }
}
