//! sea-orm entities of the incidents schema (see `migration/`).

pub mod affected_subject;
pub mod assessment;
pub mod assessment_version;
pub mod authority_notification;
pub mod incident;
pub mod incident_version;
pub mod people_notice;
