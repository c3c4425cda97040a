//! Support tickets and attachments.

use chrono::{DateTime, Utc};
use pdm_crypto::DataKey;
use pdm_runtime::SubjectId;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    NewTicket, Store, Ticket, TicketAttachment,
    entities::{support_ticket, ticket_attachment},
};
use crate::{
    domain::special,
    error::{IdentityError, Result},
};

const F_CONTACT: &str = "support_tickets.contact";
const F_SUMMARY: &str = "support_tickets.summary";
const F_DESCRIPTION: &str = "support_tickets.description";
const F_FILE_NAME: &str = "ticket_attachments.file_name";
const F_CONTENT: &str = "ticket_attachments.content";
const F_TICKET_SPECIAL: &str = "support_tickets.special_categories";
const F_ATTACHMENT_SPECIAL: &str = "ticket_attachments.special_categories";

/// Seals a declared list; `None` when nothing is declared.
fn seal_special(
    key: &DataKey,
    field: &str,
    categories: &[pdm_proto::identity::v1::SpecialCategory],
) -> Result<Option<Vec<u8>>> {
    if categories.is_empty() {
        return Ok(None);
    }
    Ok(Some(key.seal_str(field, &special::encode(categories))?))
}

/// Opens a declared list.
fn open_special(
    key: &DataKey,
    field: &str,
    sealed: Option<&Vec<u8>>,
) -> Result<Vec<pdm_proto::identity::v1::SpecialCategory>> {
    Ok(super::open_opt(key, field, sealed)?
        .map(|s| special::decode(&s))
        .unwrap_or_default())
}

impl Store {
    /// Stores a ticket and its attachments in one transaction.
    pub async fn create_ticket(
        &self,
        subject: &SubjectId,
        ticket: NewTicket,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        let key = self.key(subject).await?;
        let subject = subject.to_string();
        let ticket_id = uuid::Uuid::now_v7().to_string();
        let (rows, attachments) = {
            let key = key.clone();
            let ticket_id = ticket_id.clone();
            let subject = subject.clone();
            let attachments = ticket.attachments;
            // Sealing up to 3 MiB of attachments is CPU work: off the async threads.
            tokio::task::spawn_blocking(move || {
                seal_attachments(&key, &ticket_id, &subject, attachments)
            })
            .await
            .map_err(|_| IdentityError::Internal("sealing task failed"))??
        };
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        support_ticket::Entity::insert(support_ticket::ActiveModel {
            ticket_id: Set(ticket_id.clone()),
            subject_id: Set(subject.clone()),
            contact: Set(key.seal_str(F_CONTACT, &ticket.contact)?),
            summary: Set(key.seal_str(F_SUMMARY, &ticket.summary)?),
            description: Set(key.seal_str(F_DESCRIPTION, &ticket.description)?),
            special_categories: Set(seal_special(
                &key,
                F_TICKET_SPECIAL,
                &ticket.special_categories,
            )?),
            created_at: Set(now),
        })
        .exec(&txn)
        .await?;
        if !rows.is_empty() {
            ticket_attachment::Entity::insert_many(rows)
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(Ticket {
            ticket_id,
            subject_id: subject,
            contact: ticket.contact,
            summary: ticket.summary,
            description: ticket.description,
            attachments,
            special_categories: ticket.special_categories,
            created_at: now,
        })
    }

    /// The subject's tickets, newest first; attachment contents only when asked for.
    pub async fn tickets(&self, subject: &SubjectId, with_content: bool) -> Result<Vec<Ticket>> {
        let rows = support_ticket::Entity::find()
            .filter(support_ticket::Column::SubjectId.eq(subject.to_string()))
            .order_by_desc(support_ticket::Column::CreatedAt)
            .order_by_desc(support_ticket::Column::TicketId)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key(subject).await?;
        let attachments = ticket_attachment::Entity::find()
            .filter(ticket_attachment::Column::SubjectId.eq(subject.to_string()))
            .order_by_asc(ticket_attachment::Column::AttachmentId)
            .all(&self.db)
            .await?;
        let mut tickets = Vec::with_capacity(rows.len());
        for row in rows {
            let mut opened = Vec::new();
            for a in attachments.iter().filter(|a| a.ticket_id == row.ticket_id) {
                opened.push(TicketAttachment {
                    file_name: key.open_string(F_FILE_NAME, &a.file_name)?,
                    content_type: a.content_type.clone(),
                    size_bytes: u64::try_from(a.size_bytes).unwrap_or(0),
                    content: if with_content {
                        Some(key.open(F_CONTENT, &a.content)?)
                    } else {
                        None
                    },
                    special_categories: open_special(
                        &key,
                        F_ATTACHMENT_SPECIAL,
                        a.special_categories.as_ref(),
                    )?,
                });
            }
            tickets.push(Ticket {
                ticket_id: row.ticket_id,
                subject_id: row.subject_id,
                contact: key.open_string(F_CONTACT, &row.contact)?,
                summary: key.open_string(F_SUMMARY, &row.summary)?,
                description: key.open_string(F_DESCRIPTION, &row.description)?,
                attachments: opened,
                special_categories: open_special(
                    &key,
                    F_TICKET_SPECIAL,
                    row.special_categories.as_ref(),
                )?,
                created_at: row.created_at,
            });
        }
        Ok(tickets)
    }
}

fn seal_attachments(
    key: &DataKey,
    ticket_id: &str,
    subject: &str,
    attachments: Vec<super::NewAttachment>,
) -> Result<(Vec<ticket_attachment::ActiveModel>, Vec<TicketAttachment>)> {
    let mut rows = Vec::with_capacity(attachments.len());
    let mut summaries = Vec::with_capacity(attachments.len());
    for a in attachments {
        let size = a.content.len();
        rows.push(ticket_attachment::ActiveModel {
            attachment_id: Set(uuid::Uuid::now_v7().to_string()),
            ticket_id: Set(ticket_id.to_owned()),
            subject_id: Set(subject.to_owned()),
            file_name: Set(key.seal_str(F_FILE_NAME, &a.file_name)?),
            content_type: Set(a.content_type.to_owned()),
            size_bytes: Set(i64::try_from(size).unwrap_or(i64::MAX)),
            content: Set(key.seal(F_CONTENT, &a.content)?),
            special_categories: Set(seal_special(
                key,
                F_ATTACHMENT_SPECIAL,
                &a.special_categories,
            )?),
        });
        summaries.push(TicketAttachment {
            file_name: a.file_name,
            content_type: a.content_type.to_owned(),
            size_bytes: u64::try_from(size).unwrap_or(0),
            content: None,
            special_categories: a.special_categories,
        });
    }
    Ok((rows, summaries))
}
