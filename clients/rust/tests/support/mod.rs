//! What the facade tests share: a client of every running service of a mesh, configured
//! as a company service configures it (over mutual TLS as the test kit's client, which
//! the mesh's policy allows everything), and the fields of an error.
#![allow(dead_code)]

use pdm_client::{PdmClient, PdmError};
use pdm_testkit::{Mesh, TEST_CLIENT};

/// Services a mesh may run, each with a facade.
const SERVICES: [&str; 5] = ["identity", "consent", "telemetry", "transfers", "rights"];

/// A client of every service `mesh` runs.
pub fn client(mesh: &Mesh) -> anyhow::Result<PdmClient> {
    let mut builder = PdmClient::builder();
    for service in SERVICES {
        if let Some(addr) = mesh.addr(service) {
            builder = builder.endpoint(service, format!("http://{addr}"));
        }
    }
    if mesh.settings().tls.enabled {
        builder = builder
            .client_certificates(mesh.certificate_dir(), TEST_CLIENT)
            .spiffe_id(format!("spiffe://pdm.local/client/{TEST_CLIENT}"));
    }
    Ok(builder.build()?)
}

/// The fields an INVALID_ARGUMENT named, sorted; fails on any other answer.
pub fn bad_fields<T: std::fmt::Debug>(answer: Result<T, PdmError>) -> Vec<String> {
    let err = match answer {
        Err(err @ PdmError::InvalidArgument { .. }) => err,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    };
    let mut fields: Vec<String> = err
        .field_violations()
        .iter()
        .map(|v| v.field.clone())
        .collect();
    fields.sort();
    fields
}
