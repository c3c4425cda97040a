//! Phased authority notifications (Art. 33(4)): per regime one INITIAL first, then any
//! number of FOLLOW_UPs, then one FINAL, after which nothing more; and when an incident may
//! close.

use super::incident::Risk;

/// Which notification this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The first: meets the deadline.
    Initial,
    /// Further information.
    FollowUp,
    /// The last.
    Final,
}

impl Phase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::FollowUp => "follow_up",
            Self::Final => "final",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "initial" => Some(Self::Initial),
            "follow_up" => Some(Self::FollowUp),
            "final" => Some(Self::Final),
            _ => None,
        }
    }
}

/// Why a notification cannot be recorded after the ones already sent for its regime.
pub fn check_next(sent: &[Phase], next: Phase) -> Result<(), &'static str> {
    let has_initial = sent.contains(&Phase::Initial);
    if sent.contains(&Phase::Final) {
        return Err("the final notification for this regime was already recorded");
    }
    match next {
        Phase::Initial if has_initial => {
            Err("the initial notification for this regime was already recorded")
        }
        Phase::FollowUp | Phase::Final if !has_initial => {
            Err("the initial notification for this regime must be recorded first")
        }
        _ => Ok(()),
    }
}

/// Why an incident cannot close yet: its risk must be assessed, and each regime whose
/// authority is notified must have had its final notification. `sent` gives, per regime of
/// the incident, the phases recorded.
pub fn check_close<'a>(
    risk: Risk,
    sent: impl IntoIterator<Item = (&'a str, Vec<Phase>)>,
) -> Result<(), String> {
    if risk == Risk::Unassessed {
        return Err("the risk must be assessed before the incident closes".to_owned());
    }
    if !risk.authority_notified() {
        return Ok(());
    }
    let missing: Vec<&str> = sent
        .into_iter()
        .filter(|(_, phases)| !phases.contains(&Phase::Final))
        .map(|(regime, _)| regime)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the authority has not had its final notification for: {}",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn notifications_go_initial_then_follow_ups_then_final() {
        assert!(check_next(&[], Initial).is_ok());
        assert!(check_next(&[], FollowUp).is_err());
        assert!(check_next(&[], Final).is_err());
        assert!(check_next(&[Initial], Initial).is_err());
        assert!(check_next(&[Initial], FollowUp).is_ok());
        assert!(check_next(&[Initial, FollowUp, FollowUp], Final).is_ok());
        assert!(check_next(&[Initial, Final], FollowUp).is_err());
        assert!(check_next(&[Initial, Final], Final).is_err());
        for phase in [Initial, FollowUp, Final] {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
    }

    #[test]
    fn an_incident_closes_once_assessed_and_finally_notified() {
        let none = || vec![("gdpr", vec![]), ("uk_gdpr", vec![])];
        assert!(check_close(Risk::Unassessed, none()).is_err());
        assert!(check_close(Risk::Unlikely, none()).is_ok());
        assert_eq!(
            check_close(
                Risk::High,
                vec![("gdpr", vec![Initial, Final]), ("uk_gdpr", vec![Initial])]
            ),
            Err("the authority has not had its final notification for: uk_gdpr".to_owned())
        );
        assert!(check_close(Risk::Risk, vec![("gdpr", vec![Initial, Final])]).is_ok());
    }
}
