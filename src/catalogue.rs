//! The services of the mesh, built or not yet.

use std::sync::Arc;

use pdm_runtime::MeshService;

/// Every service the design names, in port order.
pub const ALL: [&str; 7] = [
    "identity",
    "consent",
    "telemetry",
    "retention",
    "transfers",
    "rights",
    "incidents",
];

/// The HTTP fronts: run by `pdm serve` like the services (`serve all` included), but not
/// gRPC services of the mesh. Each reads its port from its own section (`[web]`), is ready
/// when `GET /healthz` answers 200, and calls the mesh with a certificate of its own.
pub const FRONTS: [&str; 1] = ["web"];

/// Whether `name` is an HTTP front.
pub fn is_front(name: &str) -> bool {
    FRONTS.contains(&name)
}

/// Every name that gets a certificate: the services and the fronts.
pub fn identities() -> Vec<&'static str> {
    ALL.iter().chain(FRONTS.iter()).copied().collect()
}

/// Where `name` listens: `[services.<name>]`'s port, or a front's own section.
pub fn listen_addr(
    settings: &pdm_runtime::Settings,
    name: &str,
) -> anyhow::Result<std::net::SocketAddr> {
    if name == pdm_web::NAME {
        return pdm_web::listen_addr(settings);
    }
    Ok(settings.listen_addr(name)?)
}

/// The implementation of a service, if it is built.
pub fn implementation(name: &str) -> Option<Arc<dyn MeshService>> {
    match name {
        "identity" => Some(Arc::new(pdm_identity::Identity)),
        "consent" => Some(Arc::new(pdm_consent::Consent)),
        "telemetry" => Some(Arc::new(pdm_telemetry::Telemetry)),
        "retention" => Some(Arc::new(pdm_retention::Retention)),
        "rights" => Some(Arc::new(pdm_rights::Rights)),
        "transfers" => Some(Arc::new(pdm_transfers::Transfers)),
        "incidents" => Some(Arc::new(pdm_incidents::Incidents)),
        "web" => Some(Arc::new(pdm_web::Web)),
        _ => None,
    }
}

/// Resolves `all` or a comma-separated list; unknown names and services not built yet
/// are errors when named explicitly.
pub fn select(spec: &str) -> anyhow::Result<Vec<Arc<dyn MeshService>>> {
    if spec.trim() == "all" {
        return Ok(ALL
            .iter()
            .chain(FRONTS.iter())
            .filter_map(|n| implementation(n))
            .collect());
    }
    let mut chosen = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !ALL.contains(&name) && !is_front(name) {
            anyhow::bail!(
                "unknown service {name:?}; the services are {}",
                ALL.join(", ")
            );
        }
        match implementation(name) {
            Some(service) => chosen.push(service),
            None => anyhow::bail!("the {name} service is not built yet"),
        }
    }
    anyhow::ensure!(!chosen.is_empty(), "no services named");
    Ok(chosen)
}

/// Prints each service and its state.
pub fn print() {
    for name in ALL {
        let state = if implementation(name).is_some() {
            "built"
        } else {
            "not built yet"
        };
        println!("{name:<10} {state}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_the_built_services_and_names_are_checked() {
        let all = select("all").expect("all");
        assert!(all.iter().any(|s| s.name() == "identity"));
        assert!(
            all.iter().any(|s| s.name() == "web"),
            "serve all runs the web front"
        );
        assert!(select("web").is_ok());
        assert!(identities().contains(&"web"));
        assert!(select("identity").is_ok());
        assert!(select("nonsense").is_err());
        assert!(select("").is_err());
    }
}
