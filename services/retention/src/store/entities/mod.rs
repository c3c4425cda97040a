//! sea-orm entities of the retention schema (see `migration/`).

pub mod legal_hold;
pub mod policy_version;
pub mod purge_lease;
pub mod purge_run;
pub mod service_result;
pub mod subject_trigger;
