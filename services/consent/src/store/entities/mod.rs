//! sea-orm entities of the consent schema (see `migration/`).

pub mod consent_event;
pub mod subject;
pub mod unsubscribe_link;
