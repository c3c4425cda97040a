//! Two small company services that call pdm through `pdm-client` (issue 18's examples):
//!
//! - [`newsletter`]: a newsletter sender that asks the consent gate
//!   (`CanContact(EMAIL, PROMOTIONAL)`) before each message and sends only what is allowed.
//! - [`http_service`]: an HTTP/1 service whose handler sits behind the client's
//!   `ConsentLayer`, so a request about a subject who has not allowed the service's purpose
//!   is refused (403) before the handler runs.
//!
//! The binaries (`src/bin/`) only wire these to the environment; the tests call the same
//! functions against a real mesh.
#![forbid(unsafe_code)]
#![warn(clippy::expect_used, clippy::panic)]

pub mod http_service;
pub mod newsletter;

/// A [`pdm_client::types::Reason`] as a short lowercase label (`opted_out`): what the
/// examples print and answer, never anything about the person.
pub fn reason_label(reason: pdm_client::types::Reason) -> String {
    let name = reason.as_str_name();
    name.strip_prefix("REASON_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use pdm_client::types::Reason;

    use super::reason_label;

    #[test]
    fn reasons_are_labelled_by_their_contract_names() {
        assert_eq!(reason_label(Reason::OptedOut), "opted_out");
        assert_eq!(reason_label(Reason::NoConsent), "no_consent");
        assert_eq!(reason_label(Reason::Unspecified), "unspecified");
    }
}
