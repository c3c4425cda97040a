//! Every section of the settings, checked in one place: `pdm serve` and `pdm config check`
//! parse the runtime's settings and every service's section before anything starts,
//! whatever the services a process runs, and report every problem together.

use std::path::Path;

use pdm_runtime::{
    Settings,
    settings::{Problems, SettingsError},
};

/// Loads the settings (file, then environment) and checks every section.
pub fn load(config: Option<&Path>) -> Result<Settings, SettingsError> {
    Settings::load_with(config, check_all)
}

/// Parses and checks each service's section, keeping it for the service to read.
pub fn check_all(settings: &mut Settings, problems: &mut Problems) {
    settings.check_section::<pdm_identity::settings::IdentitySettings>(problems);
    settings.check_section::<pdm_consent::settings::ConsentSettings>(problems);
    settings.check_section::<pdm_telemetry::settings::TelemetrySettings>(problems);
    settings.check_section::<pdm_retention::settings::RetentionSettings>(problems);
    settings.check_section::<pdm_transfers::settings::TransfersSettings>(problems);
    settings.check_section::<pdm_rights::settings::RightsSettings>(problems);
    settings.check_section::<pdm_web::settings::WebSettings>(problems);
    settings.check_section::<pdm_incidents::settings::IncidentsSettings>(problems);
}

#[cfg(test)]
mod tests {
    use pdm_runtime::settings::SettingsSource;

    use super::*;

    #[test]
    fn the_defaults_pass_every_section() {
        let settings = Settings::from_source_with(SettingsSource::default(), check_all);
        assert!(settings.is_ok(), "{:?}", settings.err());
    }

    #[test]
    fn bad_keys_across_sections_are_reported_together() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("pdm.toml");
        std::fs::write(
            &file,
            "[server]\nrequest_timeout_ms = 0\n\n\
             [consent]\nunsubscribe_link_days = 0\ntail_interval_ms = \"soon\"\n\n\
             [telemetry]\nk_threshold = 2\n\n\
             [retention]\nservices = [\"identity\", \"identity\"]\n\n\
             [[retention.policies]]\ncategory = \"Bad Key\"\nyears = \"x\"\n\n\
             [rights]\nsmtp_timeout_secs = \"long\"\nmail_from = \"nobody\"\n",
        )
        .expect("write");
        let err = Settings::from_source_with(
            SettingsSource {
                file: Some(file),
                ..SettingsSource::default()
            },
            check_all,
        )
        .expect_err("nine problems");
        let mut keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "consent.tail_interval_ms",
                "consent.unsubscribe_link_days",
                "retention.policies[0].category",
                "retention.policies[0].years",
                "retention.services",
                "rights.mail_from",
                "rights.smtp_timeout_secs",
                "server.request_timeout_ms",
                "telemetry.k_threshold",
            ],
            "{err}"
        );
    }
}
