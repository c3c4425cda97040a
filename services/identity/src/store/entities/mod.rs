//! sea-orm entities of the identity schema (see `migration/`).

pub mod account;
pub mod billing_archive;
pub mod billing_contact;
pub mod deletion_reason;
pub mod login_throttle;
pub mod profile_photo;
pub mod session;
pub mod subject_link;
pub mod support_ticket;
pub mod ticket_attachment;
