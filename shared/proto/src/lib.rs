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

/// `pdm.identity.v1`: accounts, sessions, billing contacts and support tickets.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("pdm.identity.v1");
    }
}

/// Encoded `FileDescriptorSet` of every pdm contract (with the well-known types they
/// import), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pdm_descriptor.bin"));
