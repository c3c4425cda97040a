//! Everything held about a subject, for access and portability requests.

use chrono::{DateTime, Utc};
use pdm_runtime::SubjectId;
use serde_json::{Value, json};

use super::Store;
use crate::{
    domain::categories::{self, Category},
    error::Result,
};

/// One exported record.
#[derive(Debug, Clone)]
pub struct ExportRecord {
    /// What the record is.
    pub category: Category,
    /// Stable id within the category.
    pub record_id: String,
    /// The record's fields.
    pub data: Value,
    /// Binary content: `(name, content type, bytes)`.
    pub attachment: Option<(String, String, Vec<u8>)>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it will be deleted, when known.
    pub delete_after: Option<DateTime<Utc>>,
}

impl Store {
    /// Every record about the subject. Empty for an unknown subject.
    pub async fn export(&self, subject: &SubjectId) -> Result<Vec<ExportRecord>> {
        let Some((profile, photo)) = self.profile_and_photo(subject).await? else {
            return Ok(Vec::new());
        };
        let mut out = vec![
            ExportRecord {
                category: categories::PROFILE,
                record_id: subject.to_string(),
                data: json!({
                    "first_name": profile.first_name,
                    "last_name": profile.last_name,
                    "email": profile.email,
                    "phone": profile.phone,
                    "region": profile.region.as_str_name(),
                    "birth_date": profile.birth_date,
                    "organisation": profile.organisation,
                    "restricted": profile.restricted,
                    "updated_at": profile.updated_at.to_rfc3339(),
                }),
                attachment: None,
                created_at: Some(profile.created_at),
                delete_after: None,
            },
            ExportRecord {
                category: categories::CREDENTIALS,
                record_id: subject.to_string(),
                data: json!({
                    "password": "set; stored only as an argon2id hash, which is not exported",
                }),
                attachment: None,
                created_at: Some(profile.created_at),
                delete_after: None,
            },
        ];
        if let Some((content_type, photo)) = photo {
            out.push(ExportRecord {
                category: categories::PHOTO,
                record_id: subject.to_string(),
                data: json!({ "content_type": content_type, "size_bytes": photo.len() }),
                attachment: Some(("profile-photo".to_owned(), content_type, photo)),
                created_at: None,
                delete_after: None,
            });
        }
        for (record_id, created_at, expires_at) in self.sessions_of(subject).await? {
            out.push(ExportRecord {
                category: categories::SESSION,
                record_id,
                data: json!({ "created_at": created_at.to_rfc3339(), "expires_at": expires_at.to_rfc3339() }),
                attachment: None,
                created_at: Some(created_at),
                delete_after: Some(expires_at),
            });
        }
        if let Some(billing) = self.billing(subject).await? {
            out.push(ExportRecord {
                category: categories::BILLING,
                record_id: subject.to_string(),
                data: json!({
                    "name": billing.name,
                    "email": billing.email,
                    "phone": billing.phone,
                    "payment_processor_ref": billing.processor_ref,
                }),
                attachment: None,
                created_at: None,
                delete_after: None,
            });
        }
        for ticket in self.tickets(subject, true).await? {
            out.push(ExportRecord {
                category: categories::TICKET,
                record_id: ticket.ticket_id.clone(),
                data: json!({
                    "contact": ticket.contact,
                    "summary": ticket.summary,
                    "description": ticket.description,
                    "attachments": ticket.attachments.len(),
                    "special_categories": crate::domain::special::encode(&ticket.special_categories),
                }),
                attachment: None,
                created_at: Some(ticket.created_at),
                delete_after: None,
            });
            for (i, a) in ticket.attachments.into_iter().enumerate() {
                out.push(ExportRecord {
                    category: categories::TICKET,
                    record_id: format!("{}/attachment-{}", ticket.ticket_id, i + 1),
                    data: json!({
                        "file_name": a.file_name,
                        "content_type": a.content_type,
                        "size_bytes": a.size_bytes,
                        "special_categories": crate::domain::special::encode(&a.special_categories),
                    }),
                    attachment: Some((a.file_name, a.content_type, a.content.unwrap_or_default())),
                    created_at: Some(ticket.created_at),
                    delete_after: None,
                });
            }
        }
        Ok(out)
    }
}
