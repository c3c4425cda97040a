//! The subject's own choices reach disclosures, not only the decision API ("CCPA Privacy
//! Rights (Do Not Sell My Personal Information)"; the rights to object and to restrict).
//!
//! A recipient that decides its own purposes (an independent controller: the advertising
//! partners LinkedIn and Google) receives a person's data only when the consent service's
//! one decision function allows the transfer's purpose for that person: do not sell or
//! share, an objection, a restriction and missing or withdrawn consent all deny it there,
//! exactly as `CheckProcessing` answers. Such a disclosure is decided per person, so one
//! without a subject is refused. Processors and sub-processors act on our instructions
//! (our own processing is checked where it happens) and public authorities receive what
//! the law requires, so neither is decided here.

use pdm_proto::transfers::v1::{Outcome, RecipientRole};

use super::authorize::Verdict;

/// Whether a disclosure to a recipient in `role` must follow the person's choices.
pub fn decided_per_person(role: RecipientRole) -> bool {
    role == RecipientRole::IndependentController
}

/// What the consent service answered for (subject, purpose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Whether the purpose may be processed for the subject.
    pub allowed: bool,
    /// The consent service's reason, by name (e.g. `REASON_DO_NOT_SELL`).
    pub reason: String,
}

/// The verdict once the person's choices are applied. A denial by the register or the
/// mechanisms stands as it is (it is the first reason); an allowed disclosure to a
/// recipient decided per person needs a subject (`choice` is `None` without one) whose
/// choices allow the purpose.
pub fn apply(verdict: Verdict, role: RecipientRole, choice: Option<Choice>) -> Verdict {
    let Verdict::Allowed { mechanism, .. } = &verdict else {
        return verdict;
    };
    if !decided_per_person(role) {
        return verdict;
    }
    match choice {
        None => Verdict::Denied {
            outcome: Outcome::DeniedSubjectRequired,
            mechanism: mechanism.clone(),
            detail: "a recipient that decides its own purposes receives data person by person: \
                     name the subject"
                .into(),
        },
        Some(Choice { allowed: true, .. }) => verdict,
        Some(Choice { reason, .. }) => Verdict::Denied {
            outcome: Outcome::DeniedSubjectChoice,
            mechanism: mechanism.clone(),
            detail: format!("the subject's choices forbid this purpose ({reason})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use pdm_proto::transfers::v1::MechanismKind;

    use super::*;

    fn allowed() -> Verdict {
        Verdict::Allowed {
            outcome: Outcome::AllowedWithinRegime,
            mechanism: Some(("m1".into(), MechanismKind::EuScc)),
            detail: "IE is within the exporting regime".into(),
        }
    }

    fn choice(allowed: bool, reason: &str) -> Option<Choice> {
        Some(Choice {
            allowed,
            reason: reason.into(),
        })
    }

    fn outcome(v: &Verdict) -> Outcome {
        match v {
            Verdict::Allowed { outcome, .. } | Verdict::Denied { outcome, .. } => *outcome,
            Verdict::NeedsExplicitConsent { .. } => Outcome::Unspecified,
        }
    }

    #[test]
    fn do_not_sell_my_personal_information_stops_a_disclosure_to_an_ad_partner() {
        let v = apply(
            allowed(),
            RecipientRole::IndependentController,
            choice(false, "REASON_DO_NOT_SELL"),
        );
        assert_eq!(outcome(&v), Outcome::DeniedSubjectChoice);
        let Verdict::Denied {
            detail, mechanism, ..
        } = v
        else {
            panic!("denied");
        };
        assert!(detail.contains("REASON_DO_NOT_SELL"), "{detail}");
        assert_eq!(mechanism, Some(("m1".into(), MechanismKind::EuScc)));
    }

    #[test]
    fn an_ad_partner_receives_data_person_by_person() {
        let v = apply(allowed(), RecipientRole::IndependentController, None);
        assert_eq!(outcome(&v), Outcome::DeniedSubjectRequired);
        let v = apply(
            allowed(),
            RecipientRole::IndependentController,
            choice(true, "REASON_CONSENT_GIVEN"),
        );
        assert_eq!(v, allowed());
    }

    #[test]
    fn processors_offices_and_authorities_are_not_decided_per_person() {
        for role in [
            RecipientRole::Processor,
            RecipientRole::SubProcessor,
            RecipientRole::JointController,
            RecipientRole::PublicAuthority,
        ] {
            assert!(!decided_per_person(role), "{role:?}");
            assert_eq!(
                apply(allowed(), role, choice(false, "REASON_RESTRICTED")),
                allowed()
            );
        }
    }

    #[test]
    fn a_denial_by_the_register_stands_first() {
        let denied = Verdict::Denied {
            outcome: Outcome::DeniedNoMechanism,
            mechanism: None,
            detail: "no mechanism".into(),
        };
        assert_eq!(
            apply(
                denied.clone(),
                RecipientRole::IndependentController,
                choice(false, "REASON_OBJECTED")
            ),
            denied
        );
    }
}
