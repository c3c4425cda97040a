//! Plaintext records as the service sees them.

use chrono::{DateTime, NaiveDate, Utc};
use pdm_proto::{common::v1::Region, identity::v1::SpecialCategory};
use pdm_runtime::SubjectId;

use crate::domain::email::Email;

/// A new account, validated.
#[derive(Debug)]
pub struct NewAccount {
    /// Subject id.
    pub subject_id: SubjectId,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: Email,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Region.
    pub region: Region,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// argon2id hash.
    pub password_hash: String,
}

/// An account's profile, opened.
#[derive(Clone)]
pub struct Profile {
    /// Subject id.
    pub subject_id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Region.
    pub region: Region,
    /// Birth date, YYYY-MM-DD.
    pub birth_date: Option<String>,
    /// Organisation key of the email domain; `None` for free mail.
    pub organisation: Option<String>,
    /// Whether a photo is stored.
    pub has_photo: bool,
    /// Processing restricted.
    pub restricted: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("subject_id", &self.subject_id)
            .finish_non_exhaustive()
    }
}

/// Profile fields to change; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New email.
    pub email: Option<Email>,
    /// New phone; `Some(None)` removes it.
    pub phone: Option<Option<String>>,
    /// New region.
    pub region: Option<Region>,
    /// New or corrected birth date (it can be added or corrected, never removed).
    pub birth_date: Option<NaiveDate>,
}

/// A billing contact.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Billing {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Payment processor reference.
    pub processor_ref: String,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Billing { .. }")
    }
}

/// A new attachment, validated.
#[derive(Debug)]
pub struct NewAttachment {
    /// File name.
    pub file_name: String,
    /// Detected MIME type.
    pub content_type: &'static str,
    /// Bytes.
    pub content: Vec<u8>,
    /// Special categories declared.
    pub special_categories: Vec<SpecialCategory>,
}

/// A new ticket, validated.
#[derive(Debug)]
pub struct NewTicket {
    /// Contact.
    pub contact: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Attachments.
    pub attachments: Vec<NewAttachment>,
    /// Special categories declared for the summary and description.
    pub special_categories: Vec<SpecialCategory>,
}

/// A ticket attachment, opened.
#[derive(Clone)]
pub struct TicketAttachment {
    /// File name.
    pub file_name: String,
    /// MIME type.
    pub content_type: String,
    /// Size.
    pub size_bytes: u64,
    /// Content, when asked for.
    pub content: Option<Vec<u8>>,
    /// Special categories declared.
    pub special_categories: Vec<SpecialCategory>,
}

/// A ticket, opened.
#[derive(Clone)]
pub struct Ticket {
    /// Ticket id.
    pub ticket_id: String,
    /// Subject id.
    pub subject_id: String,
    /// Contact.
    pub contact: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Attachments.
    pub attachments: Vec<TicketAttachment>,
    /// Special categories declared for the summary and description.
    pub special_categories: Vec<SpecialCategory>,
    /// Opened.
    pub created_at: DateTime<Utc>,
}
