//! Decisions counted for Prometheus (`pdm_consent_decisions_total{outcome, reason}`).

use std::sync::LazyLock;

use pdm_metrics::{Counter, Family};
use pdm_proto::consent::v1::Reason;

use crate::domain::decision::Decision;

/// `pdm_consent_decisions_total`, by outcome and reason.
static DECISIONS: LazyLock<Family<2, Counter>> = LazyLock::new(|| {
    Family::new(
        "pdm_consent_decisions_total",
        "Consent decisions (CheckProcessing, BatchCheckProcessing, CanContact), by outcome and reason.",
        ["outcome", "reason"],
    )
});

/// Adds the consent service's families to the process registry (at start).
pub fn register() {
    pdm_metrics::register(&*DECISIONS);
}

/// Whether a decision allowed the processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    /// The `outcome` label.
    fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }
}

/// Counts `count` decisions.
fn decisions(outcome: Outcome, reason: &'static str, count: u64) {
    DECISIONS.with([outcome.label(), reason], |c| c.add(count));
}

/// Reasons, by their protobuf number: the size of a batch's tally.
const REASONS: usize = 12;

/// The `reason` label: the reason's name in lower snake case.
pub fn reason_label(reason: Reason) -> &'static str {
    match reason {
        Reason::Unspecified => "unspecified",
        Reason::ConsentGiven => "consent_given",
        Reason::OtherLegalBasis => "other_legal_basis",
        Reason::NoConsent => "no_consent",
        Reason::Withdrawn => "withdrawn",
        Reason::Restricted => "restricted",
        Reason::Objected => "objected",
        Reason::DoNotSell => "do_not_sell",
        Reason::UnknownSubject => "unknown_subject",
        Reason::UnknownPurpose => "unknown_purpose",
        Reason::OptedOut => "opted_out",
        Reason::NecessaryMessage => "necessary_message",
    }
}

fn outcome(decision: &Decision) -> Outcome {
    if decision.allowed {
        Outcome::Allowed
    } else {
        Outcome::Denied
    }
}

/// Counts one decision.
pub fn count(decision: &Decision) {
    decisions(outcome(decision), reason_label(decision.reason), 1);
}

/// A batch's decisions, counted locally and recorded once per (outcome, reason): a batch
/// of thousands touches the shared counters a handful of times.
#[derive(Debug, Default)]
pub struct Tally {
    /// `[denied, allowed][reason number]`.
    counts: [[u64; REASONS]; 2],
}

impl Tally {
    /// Adds a decision.
    pub fn add(&mut self, decision: &Decision) {
        let slot = usize::try_from(decision.reason as i32)
            .ok()
            .and_then(|reason| self.counts[usize::from(decision.allowed)].get_mut(reason));
        match slot {
            Some(n) => *n += 1,
            None => count(decision),
        }
    }

    /// Records the counts.
    pub fn record(self) {
        for (allowed, by_reason) in self.counts.iter().enumerate() {
            let outcome = if allowed == 1 {
                Outcome::Allowed
            } else {
                Outcome::Denied
            };
            for (reason, n) in by_reason.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                let reason = i32::try_from(reason)
                    .ok()
                    .and_then(|r| Reason::try_from(r).ok())
                    .unwrap_or(Reason::Unspecified);
                decisions(outcome, reason_label(reason), *n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_labels_are_the_names_in_lower_snake_case() {
        let reasons = i32::try_from(REASONS).expect("a few reasons");
        for number in 0..reasons {
            let reason = Reason::try_from(number).expect("reasons are numbered without gaps");
            let name = reason.as_str_name().trim_start_matches("REASON_");
            assert_eq!(reason_label(reason), name.to_ascii_lowercase());
        }
        assert!(
            Reason::try_from(reasons).is_err(),
            "a reason was added: REASONS is out of date"
        );
    }
}
