//! Purge runs: which services a run asks, and what state the answers put it in.

use pdm_proto::retention::v1::RunStatus;

/// The status of a run from whether each service answered: complete once every service
/// has, partial (to be retried) otherwise.
pub fn status(answered: impl IntoIterator<Item = bool>) -> RunStatus {
    if answered.into_iter().all(|ok| ok) {
        RunStatus::Completed
    } else {
        RunStatus::Partial
    }
}

/// How a purge run ended, as `pdm_retention_purge_runs_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeRunStatus {
    /// Every service answered (the run is COMPLETED).
    Ok,
    /// Some services did not answer (the run is PARTIAL, to be retried).
    Partial,
    /// The run could not be carried out (it is recovered as PARTIAL later).
    Failed,
}

impl PurgeRunStatus {
    /// The `status` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// The `status` label of a finished run (`pdm_retention_purge_runs_total`): a run that
/// did not end complete or partial could not be carried out.
pub fn metric_status(status: RunStatus) -> PurgeRunStatus {
    match status {
        RunStatus::Completed => PurgeRunStatus::Ok,
        RunStatus::Partial => PurgeRunStatus::Partial,
        RunStatus::Running | RunStatus::Unspecified => PurgeRunStatus::Failed,
    }
}

/// Parses `retention.services`: a comma-separated list of distinct service names.
pub fn parse_services(raw: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim) {
        if name.is_empty() {
            return Err("a comma-separated list of service names, without empty items".into());
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
        {
            return Err(format!("{name:?} is not a service name"));
        }
        if name == crate::NAME {
            return Err("retention does not purge itself".into());
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("{name} is listed twice"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Text that fits a column of `max` characters.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_complete_only_when_every_service_answered() {
        assert_eq!(status([true, true]), RunStatus::Completed);
        assert_eq!(status([true, false]), RunStatus::Partial);
        assert_eq!(status([]), RunStatus::Completed);
    }

    #[test]
    fn a_finished_run_is_counted_by_its_status() {
        assert_eq!(metric_status(RunStatus::Completed).label(), "ok");
        assert_eq!(metric_status(RunStatus::Partial).label(), "partial");
        assert_eq!(metric_status(RunStatus::Running).label(), "failed");
        assert_eq!(metric_status(status([true, false])).label(), "partial");
    }

    #[test]
    fn the_service_list_is_checked() {
        assert_eq!(
            parse_services("identity, consent,telemetry"),
            Ok(vec![
                "identity".to_owned(),
                "consent".to_owned(),
                "telemetry".to_owned()
            ])
        );
        assert!(parse_services("").is_err());
        assert!(parse_services("identity,,consent").is_err());
        assert!(parse_services("identity,identity").is_err());
        assert!(parse_services("retention").is_err());
        assert!(parse_services("Identity").is_err());
    }
}
