//! Every gRPC method this binary serves, read once from the descriptor sets of its protos
//! (pdm's own, health and reflection): the layers name methods and their request types
//! from here, never from what a caller sent.

use std::{collections::HashMap, sync::LazyLock};

use prost::Message as _;

/// One method of our protos.
#[derive(Debug)]
pub struct Method {
    /// `package.Service`.
    pub service: String,
    /// The method's name.
    pub method: String,
    /// The full name of its request message (`pdm.identity.v1.CreateAccountRequest`).
    pub input: String,
}

/// `/package.Service/Method` → the method.
static METHODS: LazyLock<HashMap<String, Method>> = LazyLock::new(|| {
    let mut methods = HashMap::new();
    for encoded in [
        pdm_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            tracing::error!("a file descriptor set does not decode: its methods count as unknown");
            continue;
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                let full = if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                };
                for method in &service.method {
                    methods.insert(
                        format!("/{full}/{}", method.name()),
                        Method {
                            service: full.clone(),
                            method: method.name().to_owned(),
                            input: method.input_type().trim_start_matches('.').to_owned(),
                        },
                    );
                }
            }
        }
    }
    methods
});

/// Reads the descriptor sets now rather than on the first call.
pub fn load() {
    LazyLock::force(&METHODS);
}

/// The method a request path names, if it is one of ours.
pub fn find(path: &str) -> Option<&'static Method> {
    METHODS.get(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_know_their_request_type() {
        let m = find("/pdm.identity.v1.IdentityService/CreateAccount").expect("known");
        assert_eq!(m.service, "pdm.identity.v1.IdentityService");
        assert_eq!(m.method, "CreateAccount");
        assert_eq!(m.input, "pdm.identity.v1.CreateAccountRequest");
        let m = find("/grpc.health.v1.Health/Check").expect("known");
        assert_eq!(m.input, "grpc.health.v1.HealthCheckRequest");
        assert!(find("/pdm.identity.v1.IdentityService/Nope").is_none());
    }
}
