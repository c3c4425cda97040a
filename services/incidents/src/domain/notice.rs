//! Telling the people (GDPR/UK GDPR Art. 34): when a notice is due, what it says, and the
//! states a notice goes through. No I/O.

use super::incident::{Details, Risk};

/// Longest `what_happened` (characters), as the rights service takes it.
pub const MAX_TEXT: usize = 4000;
/// Subjects told per NotifyPeople call when the caller does not say.
pub const DEFAULT_BATCH: u64 = 1000;
/// How long one NotifyPeople call goes on telling subjects before it answers with what
/// remains: well within `server.request_timeout_ms` (10 s by default).
pub const CALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(4);
/// Subjects told per NotifyPeople call at most.
pub const MAX_BATCH: i32 = 10_000;

/// Where a subject's notice stands, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Queued at the rights service's outbox.
    Pending,
    /// Delivered to the relay.
    Sent,
    /// Given up.
    Failed,
    /// Not sent: the subject was erased.
    Dropped,
    /// Not sent: no address known.
    NoAddress,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
            Self::NoAddress => "no_address",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Sent,
            Self::Failed,
            Self::Dropped,
            Self::NoAddress,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// Why the people cannot be told yet: a reason code and what to do.
pub type Refusal = (&'static str, &'static str);

/// Whether the people of an incident with `details` are to be told now: only for a high
/// risk (Art. 34(1)), and only once its likely consequences and measures are written
/// (Art. 34(2) with 33(3)(c) and (d): the notice states both).
pub fn check_due(details: &Details) -> Result<(), Refusal> {
    if details.risk != Risk::High {
        return Err((
            "NOT_HIGH_RISK",
            "people are told of a breach likely to result in a high risk to them (Art. 34): assess the incident as high risk first",
        ));
    }
    if details.likely_consequences.trim().is_empty() || details.measures_taken.trim().is_empty() {
        return Err((
            "NOT_ASSESSED",
            "the notice states the likely consequences and the measures taken: assess the incident with both first",
        ));
    }
    Ok(())
}

/// The `what_happened` to send given the one the first call fixed (`fixed`) and this
/// call's (`given`, empty to resume): `Err` when they differ, so everyone is told the same.
pub fn text_to_send<'a>(fixed: &'a str, given: &str) -> Result<&'a str, Refusal> {
    if given.is_empty() || given == fixed {
        Ok(fixed)
    } else {
        Err((
            "NOTICE_TEXT",
            "the notices of this incident started with another what_happened: send it empty (or the same) to resume",
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn details(risk: Risk, consequences: &str, measures: &str) -> Details {
        let now = Utc::now();
        Details {
            title: "t".into(),
            detected_at: now,
            aware_at: now,
            description: "d".into(),
            natures: Vec::new(),
            data_categories: vec!["account.profile".into()],
            services: Vec::new(),
            window_start: now,
            window_end: None,
            approximate_subjects: 0,
            approximate_records: 0,
            likely_consequences: consequences.into(),
            measures_taken: measures.into(),
            risk,
            risk_reasoning: String::new(),
            regimes: vec!["gdpr".into()],
        }
    }

    #[test]
    fn only_a_high_risk_with_consequences_and_measures_is_told_art_34() {
        assert_eq!(check_due(&details(Risk::High, "c", "m")), Ok(()));
        for risk in [Risk::Unassessed, Risk::Unlikely, Risk::Risk] {
            assert_eq!(
                check_due(&details(risk, "c", "m")).map_err(|e| e.0),
                Err("NOT_HIGH_RISK")
            );
        }
        assert_eq!(
            check_due(&details(Risk::High, " ", "m")).map_err(|e| e.0),
            Err("NOT_ASSESSED")
        );
        assert_eq!(
            check_due(&details(Risk::High, "c", "")).map_err(|e| e.0),
            Err("NOT_ASSESSED")
        );
    }

    #[test]
    fn a_resumed_run_says_what_the_first_said() {
        assert_eq!(text_to_send("first", ""), Ok("first"));
        assert_eq!(text_to_send("first", "first"), Ok("first"));
        assert_eq!(
            text_to_send("first", "second").map_err(|e| e.0),
            Err("NOTICE_TEXT")
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            Status::Pending,
            Status::Sent,
            Status::Failed,
            Status::Dropped,
            Status::NoAddress,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("other"), None);
    }
}
