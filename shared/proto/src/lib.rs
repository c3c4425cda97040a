//! Generated code for the pdm contracts (`proto/pdm/...`). Nothing here is hand-written
//! but the module tree and re-exports.
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `pdm.common.v1`: types shared by every contract.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("pdm.common.v1");
    }
}

/// `pdm.subject.v1`: the `SubjectDataService` contract of every data-holding service.
pub mod subject {
    pub mod v1 {
        tonic::include_proto!("pdm.subject.v1");
    }
}

/// `pdm.audit.v1`: the access trail every service keeps.
pub mod audit {
    pub mod v1 {
        tonic::include_proto!("pdm.audit.v1");
    }
}

/// `pdm.identity.v1`: accounts, sessions, billing contacts and support tickets.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("pdm.identity.v1");
    }
}

/// `pdm.consent.v1`: purposes, the consent ledger, processing and contact decisions.
pub mod consent {
    pub mod v1 {
        tonic::include_proto!("pdm.consent.v1");
    }
}

/// `pdm.transfers.v1`: recipients, transfer mechanisms, authorisation and the log.
pub mod transfers {
    pub mod v1 {
        tonic::include_proto!("pdm.transfers.v1");
    }
}

/// `pdm.telemetry.v1`: consent-gated usage events, crash reports, aggregates.
pub mod telemetry {
    pub mod v1 {
        tonic::include_proto!("pdm.telemetry.v1");
    }
}

/// `pdm.retention.v1`: retention policies, legal holds, purge runs, schedules.
pub mod retention {
    pub mod v1 {
        tonic::include_proto!("pdm.retention.v1");
    }
}

/// `pdm.rights.v1`: data-subject requests, deadlines, the fan-out, export packages.
pub mod rights {
    pub mod v1 {
        tonic::include_proto!("pdm.rights.v1");
    }
}

/// `pdm.incidents.v1`: the breach register, its authority clocks and the DPO's contact.
pub mod incidents {
    pub mod v1 {
        tonic::include_proto!("pdm.incidents.v1");
    }
}

/// Encoded `FileDescriptorSet` of every pdm contract (with the well-known types they
/// import), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pdm_descriptor.bin"));
