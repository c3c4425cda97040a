//! sea-orm entities of the incidents schema (see `migration/`).

pub mod authority_notification;
pub mod incident;
pub mod incident_version;
