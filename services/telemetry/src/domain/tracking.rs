//! Tracking technologies as purposes ("Cookies and Other Tracking Tools ... gives you
//! options to control them"): what a logged-out visitor's event may be stored for, given
//! the choice recorded for their device and the Global Privacy Control signal.

use pdm_proto::{common::v1::LegalBasis, telemetry::v1::DropReason};

/// What a tracking technology is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Needed for a service the visitor asked for: no choice needed.
    StrictlyNecessary,
    /// Usage analytics: only with the visitor's agreement.
    Analytics,
    /// Advertising and recognition across services: only with the visitor's agreement,
    /// and never under a Global Privacy Control signal.
    Advertising,
}

/// A device's recorded choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choice {
    /// Analytics agreed to.
    pub analytics: bool,
    /// Advertising agreed to.
    pub advertising: bool,
    /// A Global Privacy Control signal came with the choice.
    pub gpc: bool,
}

impl Choice {
    /// Advertising as applied: agreed to, and no GPC signal with the choice.
    pub fn advertising_effective(&self) -> bool {
        self.advertising && !self.gpc
    }
}

/// Whether a logged-out event of `category` may be stored, given the device's current
/// `choice` (none: never asked, lapsed, or no device identifier) and whether the event
/// itself carried a GPC signal; the basis it is stored on, or why it is dropped.
pub fn decide(
    choice: Option<Choice>,
    category: Category,
    gpc_on_event: bool,
) -> Result<LegalBasis, DropReason> {
    match category {
        // Exempt from consent (ePrivacy Art. 5(3)): needed to give what was asked for.
        Category::StrictlyNecessary => Ok(LegalBasis::LegitimateInterests),
        Category::Analytics => match choice {
            Some(c) if c.analytics => Ok(LegalBasis::Consent),
            _ => Err(DropReason::NoTrackingConsent),
        },
        Category::Advertising => {
            // GPC is a valid opt-out (CCPA regulations § 7025): it wins over any choice.
            if gpc_on_event || choice.is_some_and(|c| c.gpc) {
                return Err(DropReason::GlobalPrivacyControl);
            }
            match choice {
                Some(c) if c.advertising => Ok(LegalBasis::Consent),
                _ => Err(DropReason::NoTrackingConsent),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Option<Choice> = None;

    /// A choice, a category, a GPC signal on the event, and the decision.
    type Row = (
        Option<Choice>,
        Category,
        bool,
        Result<LegalBasis, DropReason>,
    );

    fn choice(analytics: bool, advertising: bool, gpc: bool) -> Option<Choice> {
        Some(Choice {
            analytics,
            advertising,
            gpc,
        })
    }

    /// Policy, "Cookies and Other Tracking Tools": the table of choice × category × GPC.
    #[test]
    fn cookies_and_other_tracking_tools_give_you_options_to_control_them() {
        use Category::{Advertising as Ad, Analytics as An, StrictlyNecessary as Sn};
        use DropReason::{GlobalPrivacyControl as Gpc, NoTrackingConsent as No};
        use LegalBasis::{Consent as C, LegitimateInterests as Li};
        let table: [Row; 24] = [
            // No choice recorded: only strictly necessary tracking.
            (NONE, Sn, false, Ok(Li)),
            (NONE, Sn, true, Ok(Li)),
            (NONE, An, false, Err(No)),
            (NONE, An, true, Err(No)),
            (NONE, Ad, false, Err(No)),
            (NONE, Ad, true, Err(Gpc)),
            // Everything refused.
            (choice(false, false, false), Sn, false, Ok(Li)),
            (choice(false, false, false), An, false, Err(No)),
            (choice(false, false, false), Ad, false, Err(No)),
            // Analytics only.
            (choice(true, false, false), An, false, Ok(C)),
            (choice(true, false, false), An, true, Ok(C)),
            (choice(true, false, false), Ad, false, Err(No)),
            // Advertising only.
            (choice(false, true, false), An, false, Err(No)),
            (choice(false, true, false), Ad, false, Ok(C)),
            (choice(false, true, false), Ad, true, Err(Gpc)),
            // Everything agreed to.
            (choice(true, true, false), Sn, false, Ok(Li)),
            (choice(true, true, false), An, false, Ok(C)),
            (choice(true, true, false), Ad, false, Ok(C)),
            (choice(true, true, false), Ad, true, Err(Gpc)),
            // GPC with the choice turns advertising off whatever was ticked.
            (choice(true, true, true), Sn, false, Ok(Li)),
            (choice(true, true, true), An, false, Ok(C)),
            (choice(true, true, true), An, true, Ok(C)),
            (choice(true, true, true), Ad, false, Err(Gpc)),
            (choice(false, true, true), Ad, false, Err(Gpc)),
        ];
        for (choice, category, gpc, expected) in table {
            assert_eq!(
                decide(choice, category, gpc),
                expected,
                "{choice:?} {category:?} gpc={gpc}"
            );
        }
    }

    /// Every combination: strictly necessary always goes in; nothing else goes in without
    /// its box ticked; advertising never goes in under GPC.
    #[test]
    fn every_choice_category_and_signal_keeps_the_rules() {
        let mut choices = vec![None];
        for bits in 0..8u8 {
            choices.push(choice(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0));
        }
        for c in choices {
            for category in [
                Category::StrictlyNecessary,
                Category::Analytics,
                Category::Advertising,
            ] {
                for gpc in [false, true] {
                    let d = decide(c, category, gpc);
                    let ticked = match category {
                        Category::StrictlyNecessary => true,
                        Category::Analytics => c.is_some_and(|c| c.analytics),
                        Category::Advertising => c.is_some_and(|c| c.advertising),
                    };
                    let signalled = gpc || c.is_some_and(|c| c.gpc);
                    let admitted = match category {
                        Category::Advertising => ticked && !signalled,
                        _ => ticked,
                    };
                    assert_eq!(d.is_ok(), admitted, "{c:?} {category:?} gpc={gpc}: {d:?}");
                    if category == Category::StrictlyNecessary {
                        assert_eq!(d, Ok(LegalBasis::LegitimateInterests));
                    } else if d.is_ok() {
                        assert_eq!(d, Ok(LegalBasis::Consent), "only with consent");
                    }
                }
            }
        }
    }

    #[test]
    fn gpc_with_the_choice_shows_advertising_off() {
        assert!(choice(true, true, false).is_some_and(|c| c.advertising_effective()));
        assert!(!choice(true, true, true).is_some_and(|c| c.advertising_effective()));
        assert!(!choice(true, false, false).is_some_and(|c| c.advertising_effective()));
    }
}
