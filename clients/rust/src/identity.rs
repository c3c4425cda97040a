//! The identity service as typed calls: accounts, sessions, billing contacts and support
//! tickets as domain types, errors as [`PdmError`] (a bad field is
//! `InvalidArgument { violations }`; an under-18 birth date or a support ticket whose
//! special categories lack explicit consent is `FailedPrecondition { preconditions }`;
//! bad credentials are `PermissionDenied`).
//!
//! A client sees only the subjects it is linked with (by creating the account, a sign-in
//! through it, or [`IdentityClient::link_subject`]); any other answers `NotFound`.

use std::time::{Duration, SystemTime};

/// The region of residence (shared by every contract).
pub use pdm_proto::common::v1::Region;
/// Why a subject closes the account; a special category of personal data (Art. 9 GDPR).
pub use pdm_proto::identity::v1::{DeletionReason, SpecialCategory};
use pdm_proto::{
    common::v1::LegalBasis,
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1 as subject,
};
use tonic::transport::Channel;

use crate::{
    call::{Stub, missing, new_key, nonempty, time},
    error::PdmError,
    retry::{Idempotence, RetryPolicy},
};

/// The profile of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Subject id (UUIDv7).
    pub subject_id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address, normalised (trimmed, lower case).
    pub email: String,
    /// Phone number in E.164 form.
    pub phone: Option<String>,
    /// Region of residence.
    pub region: Region,
    /// Birth date as YYYY-MM-DD.
    pub birth_date: Option<String>,
    /// Whether a profile photo is stored.
    pub has_photo: bool,
    /// Whether processing is restricted (Art. 18 GDPR).
    pub restricted: bool,
    /// When the account was created.
    pub created_at: Option<SystemTime>,
    /// When the profile last changed.
    pub updated_at: Option<SystemTime>,
}

impl Account {
    fn from_pb(account: Option<pb::Account>) -> Result<Self, PdmError> {
        let a = account.ok_or_else(|| missing("account"))?;
        Ok(Self {
            region: a.region(),
            subject_id: a.subject_id,
            first_name: a.first_name,
            last_name: a.last_name,
            email: a.email,
            phone: nonempty(a.phone),
            birth_date: nonempty(a.birth_date),
            has_photo: a.has_photo,
            restricted: a.restricted,
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
        })
    }
}

/// The sign-up form.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// First name (1-100 characters, one line).
    pub first_name: String,
    /// Last name (1-100 characters, one line).
    pub last_name: String,
    /// Email address (unique).
    pub email: String,
    /// Phone number in E.164 form.
    pub phone: Option<String>,
    /// Region of residence (required).
    pub region: Region,
    /// Birth date as YYYY-MM-DD; under 18 is refused (FailedPrecondition).
    pub birth_date: Option<String>,
    /// Password (12-256 characters).
    pub password: String,
}

/// Changes to a profile: the fields that are `Some` change (rectification).
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New email (checked for uniqueness again).
    pub email: Option<String>,
    /// New phone in E.164 form; `Some("")` removes it.
    pub phone: Option<String>,
    /// New region.
    pub region: Option<Region>,
    /// Birth date added or corrected (it cannot be removed).
    pub birth_date: Option<String>,
}

/// A session from [`IdentityClient::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The opaque session token (only its hash is stored).
    pub token: String,
    /// The subject it belongs to.
    pub subject_id: String,
    /// When it expires.
    pub expires_at: Option<SystemTime>,
}

/// Whose a live session token is, from [`IdentityClient::validate_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    /// The subject the session belongs to.
    pub subject_id: String,
    /// When the session expires.
    pub expires_at: Option<SystemTime>,
}

/// A credential of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The account password.
    Password(String),
    /// A live session token of the subject.
    SessionToken(String),
}

/// The person responsible for billing (card numbers are never stored: payment details
/// live with the payment processor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingContact {
    /// Name (1-200 characters, one line).
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone in E.164 form.
    pub phone: Option<String>,
    /// The payment processor's customer reference (1-200 characters, one line).
    pub payment_processor_ref: String,
}

impl BillingContact {
    fn from_pb(contact: Option<pb::BillingContact>) -> Result<Self, PdmError> {
        let c = contact.ok_or_else(|| missing("billing contact"))?;
        Ok(Self {
            name: c.name,
            email: c.email,
            phone: nonempty(c.phone),
            payment_processor_ref: c.payment_processor_ref,
        })
    }

    fn to_pb(&self) -> pb::BillingContact {
        pb::BillingContact {
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone().unwrap_or_default(),
            payment_processor_ref: self.payment_processor_ref.clone(),
        }
    }
}

/// A profile photo as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    /// The MIME type read from the content (`image/png`).
    pub content_type: String,
    /// Its size in bytes.
    pub size_bytes: u64,
}

/// A profile photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePhoto {
    /// Its MIME type.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What other users see of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicProfile {
    /// The subject.
    pub subject_id: String,
    /// First name and the last name's initial, e.g. `Ada L.`.
    pub display_name: String,
    /// Whether a profile photo is stored ([`IdentityClient::get_profile_photo`]).
    pub has_photo: bool,
}

/// A file attached to a support ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name (1-200 characters, one line).
    pub file_name: String,
    /// MIME type, detected from the content (ignored when sending).
    pub content_type: String,
    /// The bytes (at most 1 MiB; empty in listings).
    pub content: Vec<u8>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Special categories of data the file carries (each needs explicit consent).
    pub special_categories: Vec<SpecialCategory>,
}

impl Attachment {
    /// A file to attach, carrying no special category.
    pub fn new(file_name: impl Into<String>, content: Vec<u8>) -> Self {
        Self {
            file_name: file_name.into(),
            content_type: String::new(),
            size_bytes: content.len() as u64,
            content,
            special_categories: Vec::new(),
        }
    }
}

/// A support ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// Subject id.
    pub subject_id: String,
    /// How to reach the subject: an email address or an E.164 phone.
    pub contact: String,
    /// One-line summary (1-200 characters).
    pub summary: String,
    /// The problem in the subject's words (1-10,000 characters).
    pub description: String,
    /// At most 3 attachments.
    pub attachments: Vec<Attachment>,
    /// Special categories the summary and description carry (each needs explicit consent
    /// in force, else FailedPrecondition `EXPLICIT_CONSENT` and nothing stored).
    pub special_categories: Vec<SpecialCategory>,
}

/// A support ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportTicket {
    /// Ticket id.
    pub ticket_id: String,
    /// The subject it belongs to.
    pub subject_id: String,
    /// How to reach the subject about it.
    pub contact: String,
    /// One-line summary.
    pub summary: String,
    /// The problem, in the subject's words.
    pub description: String,
    /// Attachments (contents omitted in listings).
    pub attachments: Vec<Attachment>,
    /// When it was opened.
    pub created_at: Option<SystemTime>,
    /// Special categories the summary and description carry, as declared.
    pub special_categories: Vec<SpecialCategory>,
}

fn categories(values: &[i32]) -> Vec<SpecialCategory> {
    values
        .iter()
        .map(|v| SpecialCategory::try_from(*v).unwrap_or_default())
        .collect()
}

fn category_values(categories: &[SpecialCategory]) -> Vec<i32> {
    categories.iter().map(|c| *c as i32).collect()
}

impl SupportTicket {
    fn from_pb(ticket: Option<pb::SupportTicket>) -> Result<Self, PdmError> {
        let t = ticket.ok_or_else(|| missing("ticket"))?;
        Ok(Self {
            special_categories: categories(&t.special_categories),
            ticket_id: t.ticket_id,
            subject_id: t.subject_id,
            contact: t.contact,
            summary: t.summary,
            description: t.description,
            attachments: t
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    special_categories: categories(&a.special_categories),
                    file_name: a.file_name,
                    content_type: a.content_type,
                    content: a.content,
                    size_bytes: a.size_bytes,
                })
                .collect(),
            created_at: time(t.created_at),
        })
    }
}

/// Records of one category an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// Data category.
    pub category: String,
    /// Records erased.
    pub count: u64,
}

/// Records of one category an erasure kept under a legal basis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// Data category.
    pub category: String,
    /// The legal basis for keeping them.
    pub legal_basis: LegalBasis,
    /// Why, in words.
    pub reason: String,
    /// When they will be purged, if known.
    pub retain_until: Option<SystemTime>,
    /// Records kept.
    pub count: u64,
}

/// What an account deletion erased and what it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// The request the receipt answers (the idempotency key).
    pub request_id: String,
    /// The subject erased.
    pub subject_id: String,
    /// The service that erased.
    pub service: String,
    /// Categories erased, with counts.
    pub erased: Vec<Erased>,
    /// Categories kept, with their basis and date.
    pub retained: Vec<Retained>,
    /// When the erasure completed.
    pub completed_at: Option<SystemTime>,
    /// Whether the subject's key was destroyed (crypto-shredding).
    pub key_destroyed: bool,
    /// When the last key-store backup that could hold the destroyed key is deleted.
    pub key_backups_gone_by: Option<SystemTime>,
}

impl ErasureReceipt {
    fn from_pb(receipt: Option<subject::ErasureReceipt>) -> Result<Self, PdmError> {
        let r = receipt.ok_or_else(|| missing("receipt"))?;
        Ok(Self {
            request_id: r.request_id,
            subject_id: r.subject_id,
            service: r.service,
            erased: r
                .erased
                .into_iter()
                .map(|e| Erased {
                    category: e.category,
                    count: e.count,
                })
                .collect(),
            retained: r
                .retained
                .into_iter()
                .map(|k| Retained {
                    legal_basis: k.legal_basis(),
                    category: k.category,
                    reason: k.reason,
                    retain_until: time(k.retain_until),
                    count: k.count,
                })
                .collect(),
            completed_at: time(r.completed_at),
            key_destroyed: r.key_destroyed,
            key_backups_gone_by: time(r.key_backups_gone_by),
        })
    }
}

/// The identity service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    stub: Stub<IdentityServiceClient<Channel>>,
}

impl IdentityClient {
    /// Calls over `channel`, each within `timeout` (retries included).
    pub fn new(channel: Channel, timeout: Duration, retry: RetryPolicy) -> Self {
        // Attachments and photos are larger than tonic's 4 MiB default allows in one
        // message; the service enforces its own limits.
        let client = IdentityServiceClient::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        Self {
            stub: Stub::new(client, timeout, retry),
        }
    }

    /// Creates an account (CreateAccount; not retried after UNAVAILABLE: it may exist).
    pub async fn create_account(&self, form: &SignUp) -> Result<Account, PdmError> {
        let message = pb::CreateAccountRequest {
            first_name: form.first_name.clone(),
            last_name: form.last_name.clone(),
            email: form.email.clone(),
            phone: form.phone.clone().unwrap_or_default(),
            region: form.region as i32,
            birth_date: form.birth_date.clone().unwrap_or_default(),
            password: form.password.clone(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.create_account(r).await
            })
            .await?;
        Account::from_pb(r.account)
    }

    /// The profile of an account.
    pub async fn get_account(&self, subject_id: &str) -> Result<Account, PdmError> {
        let message = pb::GetAccountRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_account(r).await
            })
            .await?;
        Account::from_pb(r.account)
    }

    /// Only the region of an account (what picks the privacy regime).
    pub async fn get_region(&self, subject_id: &str) -> Result<Region, PdmError> {
        let message = pb::GetRegionRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_region(r).await
            })
            .await?;
        Ok(r.region())
    }

    /// Changes the fields given (UpdateProfile; not retried after UNAVAILABLE).
    pub async fn update_profile(
        &self,
        subject_id: &str,
        changes: &ProfileChanges,
    ) -> Result<Account, PdmError> {
        let message = pb::UpdateProfileRequest {
            subject_id: subject_id.to_owned(),
            first_name: changes.first_name.clone(),
            last_name: changes.last_name.clone(),
            email: changes.email.clone(),
            phone: changes.phone.clone(),
            region: changes.region.map(|r| r as i32),
            birth_date: changes.birth_date.clone(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.update_profile(r).await
            })
            .await?;
        Account::from_pb(r.account)
    }

    /// Stores or replaces the profile photo: JPEG, PNG or WebP (read from the content),
    /// at most 2 MiB (not retried after UNAVAILABLE).
    pub async fn set_profile_photo(
        &self,
        subject_id: &str,
        photo: &[u8],
    ) -> Result<StoredPhoto, PdmError> {
        let message = pb::SetProfilePhotoRequest {
            subject_id: subject_id.to_owned(),
            photo: photo.to_vec(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.set_profile_photo(r).await
            })
            .await?;
        Ok(StoredPhoto {
            content_type: r.content_type,
            size_bytes: r.size_bytes,
        })
    }

    /// The profile photo; `NotFound` when there is none.
    pub async fn get_profile_photo(&self, subject_id: &str) -> Result<ProfilePhoto, PdmError> {
        let message = pb::GetProfilePhotoRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_profile_photo(r).await
            })
            .await?;
        Ok(ProfilePhoto {
            content_type: r.content_type,
            bytes: r.photo,
        })
    }

    /// What other users see of the subject: the display name and whether a photo
    /// exists. `NotFound` ("no public profile") for a restricted, erased or unknown
    /// subject.
    pub async fn get_public_profile(&self, subject_id: &str) -> Result<PublicProfile, PdmError> {
        let message = pb::GetPublicProfileRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_public_profile(r).await
            })
            .await?;
        Ok(PublicProfile {
            subject_id: r.subject_id,
            display_name: r.display_name,
            has_photo: r.has_photo,
        })
    }

    /// The organisation inferred from the subject's email domain (`acme.co.uk` for
    /// `ada@mail.acme.co.uk`); none for a free-mail address, a restricted subject or one
    /// who objected to `organisation_insights`.
    pub async fn get_organisation(&self, subject_id: &str) -> Result<Option<String>, PdmError> {
        let message = pb::GetOrganisationRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_organisation(r).await
            })
            .await?;
        Ok(nonempty(r.organisation))
    }

    /// Exchanges email and password for a session (a new session each call, so not
    /// retried after UNAVAILABLE). Bad credentials: `PermissionDenied`; repeated failures:
    /// `ResourceExhausted` with the delay to wait.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Session, PdmError> {
        let message = pb::AuthenticateRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.authenticate(r).await
            })
            .await?;
        Ok(Session {
            token: r.session_token,
            subject_id: r.subject_id,
            expires_at: time(r.expires_at),
        })
    }

    /// Whose a live session token is; `PermissionDenied` for an unknown or expired one.
    pub async fn validate_session(&self, token: &str) -> Result<SessionOwner, PdmError> {
        let message = pb::ValidateSessionRequest {
            session_token: token.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.validate_session(r).await
            })
            .await?;
        Ok(SessionOwner {
            subject_id: r.subject_id,
            expires_at: time(r.expires_at),
        })
    }

    /// Checks that `credential` is the subject's; `PermissionDenied` otherwise. A read:
    /// retried after UNAVAILABLE like one (as the Python and TypeScript clients do).
    pub async fn verify_subject(
        &self,
        subject_id: &str,
        credential: &Credential,
    ) -> Result<(), PdmError> {
        let credential = match credential {
            Credential::Password(p) => pb::verify_subject_request::Credential::Password(p.clone()),
            Credential::SessionToken(t) => {
                pb::verify_subject_request::Credential::SessionToken(t.clone())
            }
        };
        let message = pb::VerifySubjectRequest {
            subject_id: subject_id.to_owned(),
            credential: Some(credential),
        };
        self.stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.verify_subject(r).await
            })
            .await?;
        Ok(())
    }

    /// Links this client with the subject whose live session token it presents, and
    /// returns the subject id. A link is a fact, not an event: linking again changes
    /// nothing, so the call is retried like a read.
    pub async fn link_subject(&self, session_token: &str) -> Result<String, PdmError> {
        let message = pb::LinkSubjectRequest {
            session_token: session_token.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.link_subject(r).await
            })
            .await?;
        Ok(r.subject_id)
    }

    /// Closes an account: needs the password again and a reason. `request_id` is the
    /// idempotency key (a retry with it returns the first receipt); without one a key is
    /// made for this call, so its retries are safe too.
    pub async fn delete_account(
        &self,
        subject_id: &str,
        password: &str,
        reason: DeletionReason,
        request_id: Option<&str>,
    ) -> Result<ErasureReceipt, PdmError> {
        let message = pb::DeleteAccountRequest {
            subject_id: subject_id.to_owned(),
            password: password.to_owned(),
            reason: reason as i32,
            request_id: request_id.map_or_else(new_key, str::to_owned),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.delete_account(r).await
            })
            .await?;
        ErasureReceipt::from_pb(r.receipt)
    }

    /// Stores (or replaces) the billing contact (not retried after UNAVAILABLE).
    pub async fn set_billing_contact(
        &self,
        subject_id: &str,
        contact: &BillingContact,
    ) -> Result<BillingContact, PdmError> {
        let message = pb::SetBillingContactRequest {
            subject_id: subject_id.to_owned(),
            billing_contact: Some(contact.to_pb()),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.set_billing_contact(r).await
            })
            .await?;
        BillingContact::from_pb(r.billing_contact)
    }

    /// The billing contact; `NotFound` when there is none.
    pub async fn get_billing_contact(&self, subject_id: &str) -> Result<BillingContact, PdmError> {
        let message = pb::GetBillingContactRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.get_billing_contact(r).await
            })
            .await?;
        BillingContact::from_pb(r.billing_contact)
    }

    /// Opens a support ticket (no idempotency key: not retried after UNAVAILABLE).
    pub async fn create_support_ticket(
        &self,
        ticket: &NewTicket,
    ) -> Result<SupportTicket, PdmError> {
        let message = pb::CreateSupportTicketRequest {
            subject_id: ticket.subject_id.clone(),
            contact: ticket.contact.clone(),
            summary: ticket.summary.clone(),
            description: ticket.description.clone(),
            attachments: ticket
                .attachments
                .iter()
                .map(|a| pb::TicketAttachment {
                    file_name: a.file_name.clone(),
                    content_type: a.content_type.clone(),
                    content: a.content.clone(),
                    size_bytes: a.content.len() as u64,
                    special_categories: category_values(&a.special_categories),
                })
                .collect(),
            special_categories: category_values(&ticket.special_categories),
        };
        let r = self
            .stub
            .call(Idempotence::NotIdempotent, message, |mut c, r| async move {
                c.create_support_ticket(r).await
            })
            .await?;
        SupportTicket::from_pb(r.ticket)
    }

    /// The subject's tickets, newest first (attachment contents omitted).
    pub async fn list_support_tickets(
        &self,
        subject_id: &str,
    ) -> Result<Vec<SupportTicket>, PdmError> {
        let message = pb::ListSupportTicketsRequest {
            subject_id: subject_id.to_owned(),
        };
        let r = self
            .stub
            .call(Idempotence::Idempotent, message, |mut c, r| async move {
                c.list_support_tickets(r).await
            })
            .await?;
        r.tickets
            .into_iter()
            .map(|t| SupportTicket::from_pb(Some(t)))
            .collect()
    }
}
