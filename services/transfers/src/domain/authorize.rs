//! Authorising a transfer ("How we transfer information we collect internationally":
//! standard contractual clauses and other approved mechanisms for EEA, UK and Swiss
//! data). In order:
//! 1. the recipient's register entry must cover the purpose and every category;
//! 2. a regime without transfer rules, a destination inside the regime, or one on its
//!    adequacy list needs nothing more;
//! 3. otherwise some mechanism for the regime must pass every check: active, in date,
//!    not overdue for review, covering purpose and categories, the SCC module matching
//!    the roles, a positive impact assessment where one is needed. A consent derogation
//!    passes only once the consent service confirms the subject's explicit consent.

use chrono::{DateTime, Utc};
use pdm_proto::transfers::v1::{
    MechanismKind, MechanismStatus, Outcome, PartyRole, RecipientRole, Regime, TiaOutcome,
};

use super::{
    adequacy::{AdequacyList, adequate},
    country,
    mechanism::{Mechanism, expected_module, has_module, importer_role, needs_tia},
};

/// What the rules need of a recipient.
#[derive(Debug, Clone)]
pub struct RecipientFacts<'a> {
    /// Destination country.
    pub country: &'a str,
    /// Role.
    pub role: RecipientRole,
    /// Purposes it may receive data for.
    pub purposes: &'a [String],
    /// Categories it may receive.
    pub data_categories: &'a [String],
    /// Certifications.
    pub certifications: &'a [String],
}

/// The transfer asked about.
#[derive(Debug, Clone)]
pub struct TransferFacts<'a> {
    /// Exporting regime.
    pub regime: Regime,
    /// Purpose.
    pub purpose: &'a str,
    /// Categories.
    pub data_categories: &'a [String],
    /// Our role.
    pub exporter_role: PartyRole,
}

/// The rules' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allowed {
        /// Why.
        outcome: Outcome,
        /// The covering mechanism, if any.
        mechanism: Option<(String, MechanismKind)>,
        /// Detail in words.
        detail: String,
    },
    /// Denied.
    Denied {
        /// Why.
        outcome: Outcome,
        /// The mechanism that came closest, if any.
        mechanism: Option<(String, MechanismKind)>,
        /// Detail in words.
        detail: String,
    },
    /// Allowed only if the subject gave explicit consent (asked of the consent service);
    /// otherwise `fallback`.
    NeedsExplicitConsent {
        /// The derogation.
        mechanism: (String, MechanismKind),
        /// The answer without consent.
        fallback: Box<Verdict>,
    },
}

/// Checks in the order they are made; a later failure means a closer candidate.
const FAILURE_ORDER: [Outcome; 8] = [
    Outcome::DeniedMechanismInactive,
    Outcome::DeniedExpired,
    Outcome::DeniedReviewOverdue,
    Outcome::DeniedPurposeNotCovered,
    Outcome::DeniedCategoryNotCovered,
    Outcome::DeniedModuleMismatch,
    Outcome::DeniedTiaMissing,
    Outcome::DeniedTiaNegative,
];

fn rank(outcome: Outcome) -> usize {
    FAILURE_ORDER
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or(0)
}

fn covers(list: &[String], wanted: &[String]) -> bool {
    list.is_empty() || wanted.iter().all(|w| list.contains(w))
}

/// Evaluates one mechanism; `Err` names the first check it fails.
pub fn evaluate(
    m: &Mechanism,
    recipient: &RecipientFacts<'_>,
    transfer: &TransferFacts<'_>,
    now: DateTime<Utc>,
) -> Result<(), Outcome> {
    if m.status != MechanismStatus::Active {
        return Err(Outcome::DeniedMechanismInactive);
    }
    if m.valid_from > now || m.expires_at.is_some_and(|e| e <= now) {
        return Err(Outcome::DeniedExpired);
    }
    if m.review_due.is_some_and(|r| r <= now) {
        return Err(Outcome::DeniedReviewOverdue);
    }
    if !covers(&m.purposes, &[transfer.purpose.to_owned()]) {
        return Err(Outcome::DeniedPurposeNotCovered);
    }
    if !covers(&m.data_categories, transfer.data_categories) {
        return Err(Outcome::DeniedCategoryNotCovered);
    }
    if has_module(m.kind) {
        let exporter = match transfer.exporter_role {
            PartyRole::Unspecified => PartyRole::Controller,
            role => role,
        };
        let expected = expected_module(exporter, importer_role(recipient.role));
        if m.scc_module != Some(expected) {
            return Err(Outcome::DeniedModuleMismatch);
        }
    }
    if needs_tia(m.kind) {
        match m.tia {
            None | Some((TiaOutcome::Unspecified, _)) => return Err(Outcome::DeniedTiaMissing),
            Some((TiaOutcome::Inadequate, _)) => return Err(Outcome::DeniedTiaNegative),
            // "Adequate with measures" without any measure listed is not a real assessment.
            Some((TiaOutcome::AdequateWithMeasures, 0)) => return Err(Outcome::DeniedTiaMissing),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Decides a transfer.
pub fn authorize(
    transfer: &TransferFacts<'_>,
    recipient: &RecipientFacts<'_>,
    mechanisms: &[Mechanism],
    adequacy: &[AdequacyList],
    now: DateTime<Utc>,
) -> Verdict {
    let deny = |outcome, mechanism, detail: String| Verdict::Denied {
        outcome,
        mechanism,
        detail,
    };
    if !recipient.purposes.iter().any(|p| p == transfer.purpose) {
        return deny(
            Outcome::DeniedPurposeNotCovered,
            None,
            "the recipient's register entry does not cover this purpose".into(),
        );
    }
    if let Some(missing) = transfer
        .data_categories
        .iter()
        .find(|c| !recipient.data_categories.contains(c))
    {
        return deny(
            Outcome::DeniedCategoryNotCovered,
            None,
            format!("the recipient's register entry does not cover category {missing}"),
        );
    }
    if transfer.regime == Regime::Other {
        return Verdict::Allowed {
            outcome: Outcome::AllowedNotRestricted,
            mechanism: None,
            detail: "the exporting regime restricts no international transfers".into(),
        };
    }
    if country::within(transfer.regime, recipient.country) {
        return Verdict::Allowed {
            outcome: Outcome::AllowedWithinRegime,
            mechanism: None,
            detail: format!("{} is within the exporting regime", recipient.country),
        };
    }
    if let Some((list, destination)) = adequate(
        adequacy,
        transfer.regime,
        recipient.country,
        recipient.certifications,
    ) {
        let condition = destination
            .requires_certification
            .as_ref()
            .map(|c| format!(" for recipients certified under {c}"))
            .unwrap_or_default();
        return Verdict::Allowed {
            outcome: Outcome::AllowedAdequacy,
            mechanism: None,
            detail: format!(
                "{} is adequate{condition}: {} (as of {})",
                recipient.country, list.source, list.as_of
            ),
        };
    }

    let candidates: Vec<&Mechanism> = mechanisms
        .iter()
        .filter(|m| m.regimes.contains(&transfer.regime))
        .collect();
    let mut consent_derogation = None;
    let mut closest: Option<(Outcome, &Mechanism)> = None;
    for m in &candidates {
        match evaluate(m, recipient, transfer, now) {
            Ok(()) if m.kind == MechanismKind::DerogationExplicitConsent => {
                consent_derogation.get_or_insert(*m);
            }
            Ok(()) => {
                return Verdict::Allowed {
                    outcome: Outcome::AllowedMechanism,
                    mechanism: Some((m.id.clone(), m.kind)),
                    detail: format!("covered by {}", m.kind.as_str_name()),
                };
            }
            Err(outcome) => {
                if closest.is_none_or(|(best, _)| rank(outcome) > rank(best)) {
                    closest = Some((outcome, m));
                }
            }
        }
    }
    let fallback = match closest {
        Some((outcome, m)) => deny(
            outcome,
            Some((m.id.clone(), m.kind)),
            format!("{} does not cover this transfer", m.kind.as_str_name()),
        ),
        None => deny(
            Outcome::DeniedNoMechanism,
            None,
            format!(
                "{} is not adequate for {} and no mechanism covers the recipient",
                recipient.country,
                transfer.regime.as_str_name()
            ),
        ),
    };
    match consent_derogation {
        Some(m) => Verdict::NeedsExplicitConsent {
            mechanism: (m.id.clone(), m.kind),
            fallback: Box::new(fallback),
        },
        None => fallback,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::adequacy::defaults;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    struct Case {
        purposes: Vec<String>,
        categories: Vec<String>,
        certifications: Vec<String>,
    }

    impl Case {
        fn new() -> Self {
            Self {
                purposes: strings(&["service_provision", "support"]),
                categories: strings(&["account.profile", "support.ticket"]),
                certifications: Vec::new(),
            }
        }

        fn recipient<'a>(&'a self, country: &'a str, role: RecipientRole) -> RecipientFacts<'a> {
            RecipientFacts {
                country,
                role,
                purposes: &self.purposes,
                data_categories: &self.categories,
                certifications: &self.certifications,
            }
        }
    }

    fn transfer<'a>(regime: Regime, categories: &'a [String]) -> TransferFacts<'a> {
        TransferFacts {
            regime,
            purpose: "service_provision",
            data_categories: categories,
            exporter_role: PartyRole::Controller,
        }
    }

    fn scc(now: DateTime<Utc>) -> Mechanism {
        Mechanism {
            id: "m1".into(),
            kind: MechanismKind::EuScc,
            regimes: vec![Regime::Eu],
            scc_module: Some(2),
            valid_from: now - Duration::days(30),
            expires_at: None,
            review_due: Some(now + Duration::days(300)),
            status: MechanismStatus::Active,
            purposes: Vec::new(),
            data_categories: Vec::new(),
            tia: Some((TiaOutcome::AdequateWithMeasures, 2)),
        }
    }

    fn outcome(v: &Verdict) -> Outcome {
        match v {
            Verdict::Allowed { outcome, .. } | Verdict::Denied { outcome, .. } => *outcome,
            Verdict::NeedsExplicitConsent { .. } => Outcome::Unspecified,
        }
    }

    #[test]
    fn hosting_in_india_needs_sccs_and_they_cover_it() {
        let now = Utc::now();
        let case = Case::new();
        let cats = strings(&["account.profile"]);
        let r = case.recipient("IN", RecipientRole::Processor);
        let t = transfer(Regime::Eu, &cats);
        assert_eq!(
            outcome(&authorize(&t, &r, &[], &defaults(), now)),
            Outcome::DeniedNoMechanism
        );
        assert_eq!(
            outcome(&authorize(&t, &r, &[scc(now)], &defaults(), now)),
            Outcome::AllowedMechanism
        );
    }

    #[test]
    fn within_regime_and_adequate_destinations_need_no_mechanism() {
        let now = Utc::now();
        let case = Case::new();
        let cats = strings(&["account.profile"]);
        let t = transfer(Regime::Eu, &cats);
        assert_eq!(
            outcome(&authorize(
                &t,
                &case.recipient("DE", RecipientRole::Processor),
                &[],
                &defaults(),
                now
            )),
            Outcome::AllowedWithinRegime
        );
        assert_eq!(
            outcome(&authorize(
                &t,
                &case.recipient("GB", RecipientRole::JointController),
                &[],
                &defaults(),
                now
            )),
            Outcome::AllowedAdequacy
        );
        let t_other = transfer(Regime::Other, &cats);
        assert_eq!(
            outcome(&authorize(
                &t_other,
                &case.recipient("IN", RecipientRole::Processor),
                &[],
                &defaults(),
                now
            )),
            Outcome::AllowedNotRestricted
        );
    }

    #[test]
    fn each_failed_check_is_named() {
        let now = Utc::now();
        let case = Case::new();
        let cats = strings(&["account.profile"]);
        let r = case.recipient("IN", RecipientRole::Processor);
        let t = transfer(Regime::Eu, &cats);
        let run = |m: Mechanism| outcome(&authorize(&t, &r, &[m], &defaults(), now));
        assert_eq!(
            run(Mechanism {
                expires_at: Some(now - Duration::days(1)),
                ..scc(now)
            }),
            Outcome::DeniedExpired
        );
        assert_eq!(
            run(Mechanism {
                review_due: Some(now - Duration::days(1)),
                ..scc(now)
            }),
            Outcome::DeniedReviewOverdue
        );
        assert_eq!(
            run(Mechanism {
                scc_module: Some(1),
                ..scc(now)
            }),
            Outcome::DeniedModuleMismatch
        );
        assert_eq!(
            run(Mechanism {
                tia: None,
                ..scc(now)
            }),
            Outcome::DeniedTiaMissing
        );
        assert_eq!(
            run(Mechanism {
                tia: Some((TiaOutcome::Inadequate, 0)),
                ..scc(now)
            }),
            Outcome::DeniedTiaNegative
        );
        assert_eq!(
            run(Mechanism {
                purposes: strings(&["support"]),
                ..scc(now)
            }),
            Outcome::DeniedPurposeNotCovered
        );
        assert_eq!(
            run(Mechanism {
                data_categories: strings(&["support.ticket"]),
                ..scc(now)
            }),
            Outcome::DeniedCategoryNotCovered
        );
        assert_eq!(
            run(Mechanism {
                status: MechanismStatus::Suspended,
                ..scc(now)
            }),
            Outcome::DeniedMechanismInactive
        );
        assert_eq!(
            run(Mechanism {
                regimes: vec![Regime::Uk],
                ..scc(now)
            }),
            Outcome::DeniedNoMechanism
        );
    }

    #[test]
    fn the_register_entry_bounds_every_transfer() {
        let now = Utc::now();
        let case = Case::new();
        let cats = strings(&["telemetry.event"]);
        let t = transfer(Regime::Eu, &cats);
        let v = authorize(
            &t,
            &case.recipient("DE", RecipientRole::Processor),
            &[],
            &defaults(),
            now,
        );
        assert_eq!(outcome(&v), Outcome::DeniedCategoryNotCovered);
    }

    #[test]
    fn a_consent_derogation_defers_to_the_consent_service() {
        let now = Utc::now();
        let case = Case::new();
        let cats = strings(&["account.profile"]);
        let r = case.recipient("IN", RecipientRole::Processor);
        let t = transfer(Regime::Eu, &cats);
        let derogation = Mechanism {
            id: "d1".into(),
            kind: MechanismKind::DerogationExplicitConsent,
            scc_module: None,
            tia: None,
            ..scc(now)
        };
        let v = authorize(&t, &r, &[derogation], &defaults(), now);
        assert!(
            matches!(v, Verdict::NeedsExplicitConsent { ref mechanism, .. } if mechanism.0 == "d1"),
            "{v:?}"
        );
    }
}
