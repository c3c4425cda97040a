//! Decision precedence. For a known subject and a known purpose:
//! 1. restriction denies everything but purposes that survive it (legal claims);
//! 2. an objection denies the purpose (absolute for direct marketing);
//! 3. "do not sell or share" denies sale and ad-partner purposes;
//! 4. an opt-out of a channel denies that channel's marketing purpose (one choice, one
//!    answer: `CheckProcessing(marketing_email)` and `CanContact(EMAIL, PROMOTIONAL)`
//!    agree);
//! 5. a purpose resting on consent needs consent in force (else "withdrawn" or "no
//!    consent");
//! 6. otherwise the purpose's own legal basis allows it.

use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{Channel, MessageKind, Reason},
};

use super::{
    catalogue::{Catalogue, Purpose},
    state::SubjectState,
};

/// A decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// The legal basis it rests on (or would).
    pub basis: LegalBasis,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    fn allow(basis: LegalBasis, reason: Reason) -> Self {
        Self {
            allowed: true,
            basis,
            reason,
        }
    }

    fn deny(basis: LegalBasis, reason: Reason) -> Self {
        Self {
            allowed: false,
            basis,
            reason,
        }
    }

    /// The subject is not known.
    pub fn unknown_subject(basis: LegalBasis) -> Self {
        Self::deny(basis, Reason::UnknownSubject)
    }

    /// The purpose is not in the catalogue.
    pub fn unknown_purpose() -> Self {
        Self::deny(LegalBasis::Unspecified, Reason::UnknownPurpose)
    }
}

/// Decides whether `purpose` (catalogue index `index`) may be processed for a subject.
pub fn decide(purpose: &Purpose, index: usize, state: &SubjectState) -> Decision {
    let basis = purpose.basis(state.region);
    if state.restricted && !purpose.survives_restriction {
        return Decision::deny(basis, Reason::Restricted);
    }
    if state.objected(index) {
        return Decision::deny(basis, Reason::Objected);
    }
    if purpose.sale_or_share && state.do_not_sell {
        return Decision::deny(basis, Reason::DoNotSell);
    }
    // Policy, "Marketing Our Services": "you can opt out of receiving marketing
    // communications from us": the opt-out stops the purpose, whichever API asks.
    if marketing_channel(&purpose.key).is_some_and(|channel| state.opted_out(channel)) {
        return Decision::deny(basis, Reason::OptedOut);
    }
    if basis == LegalBasis::Consent {
        return if state.granted(index) {
            Decision::allow(basis, Reason::ConsentGiven)
        } else if state.withdrawn(index) {
            Decision::deny(basis, Reason::Withdrawn)
        } else {
            Decision::deny(basis, Reason::NoConsent)
        };
    }
    Decision::allow(basis, Reason::OtherLegalBasis)
}

/// The marketing purpose behind promotional messages on a channel.
pub fn channel_purpose(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Email => Some("marketing_email"),
        Channel::Ads => Some("marketing_ads"),
        Channel::Sms => Some("marketing_sms"),
        Channel::Push => Some("marketing_push"),
        Channel::Unspecified => None,
    }
}

/// The channel whose promotional messages a marketing purpose is, if it is one.
pub fn marketing_channel(purpose: &str) -> Option<Channel> {
    super::event::CHANNELS
        .into_iter()
        .find(|channel| channel_purpose(*channel) == Some(purpose))
}

/// Whether a message may be sent. Transactional, administrative and security messages
/// always go out ("you won't be able to opt-out of receiving these types of
/// communications"); promotional ones need the channel's marketing purpose allowed and no
/// opt-out on the channel, effective at once (the policy allows 15 business days).
pub fn can_contact(
    catalogue: &Catalogue,
    state: &SubjectState,
    channel: Channel,
    kind: MessageKind,
) -> Decision {
    if kind != MessageKind::Promotional {
        return Decision::allow(LegalBasis::Contract, Reason::NecessaryMessage);
    }
    let Some(index) = channel_purpose(channel).and_then(|k| catalogue.find(k)) else {
        return Decision::unknown_purpose();
    };
    decide(catalogue.get(index), index, state)
}

#[cfg(test)]
mod tests {
    use pdm_proto::{common::v1::Region, consent::v1::LedgerEntryKind};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        catalogue::REGIONS,
        event::{CHANNELS, Change},
    };

    fn cat() -> Catalogue {
        Catalogue::new(&[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn idx(c: &Catalogue, key: &str) -> usize {
        c.find(key).unwrap_or_else(|| panic!("{key}"))
    }

    fn check(c: &Catalogue, key: &str, s: &SubjectState) -> Decision {
        let i = idx(c, key);
        decide(c.get(i), i, s)
    }

    #[test]
    fn consent_purposes_need_consent_in_europe() {
        let c = cat();
        let mut s = SubjectState::new(Region::Eea);
        let i = idx(&c, "product_analytics");
        assert_eq!(check(&c, "product_analytics", &s).reason, Reason::NoConsent);
        s.apply(&Change {
            kind: LedgerEntryKind::Grant,
            purpose: Some(i),
            channel: Channel::Unspecified,
        });
        let d = check(&c, "product_analytics", &s);
        assert!(d.allowed);
        assert_eq!(
            (d.basis, d.reason),
            (LegalBasis::Consent, Reason::ConsentGiven)
        );
        s.apply(&Change {
            kind: LedgerEntryKind::Withdraw,
            purpose: Some(i),
            channel: Channel::Unspecified,
        });
        assert_eq!(check(&c, "product_analytics", &s).reason, Reason::Withdrawn);
    }

    #[test]
    fn other_bases_allow_and_name_the_basis() {
        let c = cat();
        let s = SubjectState::new(Region::Us);
        let d = check(&c, "product_analytics", &s);
        assert!(d.allowed);
        assert_eq!(d.basis, LegalBasis::LegitimateInterests);
        assert_eq!(
            check(&c, "service_provision", &s).basis,
            LegalBasis::Contract
        );
    }

    #[test]
    fn restriction_denies_all_but_legal_compliance() {
        let c = cat();
        let s = SubjectState {
            restricted: true,
            ..SubjectState::new(Region::Uk)
        };
        assert_eq!(
            check(&c, "service_provision", &s).reason,
            Reason::Restricted
        );
        assert!(check(&c, "legal_compliance", &s).allowed);
    }

    #[test]
    fn do_not_sell_denies_sale_and_ads_even_with_consent() {
        let c = cat();
        let ads = idx(&c, "marketing_ads");
        let s = SubjectState {
            do_not_sell: true,
            granted: 1 << ads,
            ..SubjectState::new(Region::UsCa)
        };
        assert_eq!(check(&c, "sale_or_share", &s).reason, Reason::DoNotSell);
        assert_eq!(check(&c, "marketing_ads", &s).reason, Reason::DoNotSell);
        assert!(check(&c, "service_provision", &s).allowed);
    }

    #[test]
    fn necessary_messages_go_out_after_an_opt_out_and_promotions_do_not() {
        let c = cat();
        let email = idx(&c, "marketing_email");
        let mut s = SubjectState {
            granted: 1 << email,
            ..SubjectState::new(Region::Eea)
        };
        assert!(can_contact(&c, &s, Channel::Email, MessageKind::Promotional).allowed);
        s.apply(&Change {
            kind: LedgerEntryKind::OptOut,
            purpose: None,
            channel: Channel::Email,
        });
        assert_eq!(
            can_contact(&c, &s, Channel::Email, MessageKind::Promotional).reason,
            Reason::OptedOut
        );
        for kind in [
            MessageKind::Transactional,
            MessageKind::Administrative,
            MessageKind::Security,
        ] {
            assert!(
                can_contact(&c, &s, Channel::Email, kind).allowed,
                "{kind:?}"
            );
        }
        assert_eq!(
            can_contact(&c, &s, Channel::Sms, MessageKind::Promotional).reason,
            Reason::NoConsent
        );
    }

    #[test]
    fn an_email_opt_out_is_one_answer_for_every_api() {
        // Issue 15, "two truths for one choice": after an email opt-out the marketing
        // purpose is denied by CheckProcessing as by CanContact, consent or not.
        let c = cat();
        let email = idx(&c, "marketing_email");
        let mut s = SubjectState {
            granted: 1 << email,
            ..SubjectState::new(Region::Eea)
        };
        assert!(check(&c, "marketing_email", &s).allowed);
        s.apply(&Change {
            kind: LedgerEntryKind::OptOut,
            purpose: None,
            channel: Channel::Email,
        });
        let checked = check(&c, "marketing_email", &s);
        let contact = can_contact(&c, &s, Channel::Email, MessageKind::Promotional);
        assert_eq!(checked, contact);
        assert_eq!(checked.reason, Reason::OptedOut);
        // Other channels' purposes are not touched.
        assert_ne!(check(&c, "marketing_sms", &s).reason, Reason::OptedOut);
    }

    #[test]
    fn every_channel_names_its_marketing_purpose_and_back() {
        for channel in CHANNELS {
            let purpose = channel_purpose(channel).unwrap_or_default();
            assert_eq!(marketing_channel(purpose), Some(channel));
        }
        assert_eq!(marketing_channel("product_analytics"), None);
    }

    fn arb_state() -> impl Strategy<Value = SubjectState> {
        (
            0usize..7,
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            0u8..16,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(r, granted, withdrawn, objected, opted_out, restricted, do_not_sell)| {
                    SubjectState {
                        region: REGIONS[r],
                        granted,
                        withdrawn: withdrawn & !granted,
                        objected,
                        opted_out,
                        restricted,
                        do_not_sell,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn precedence_holds_for_every_state_and_purpose(s in arb_state(), p in 0usize..14) {
            let c = cat();
            let p = p % c.all().len();
            let purpose = c.get(p);
            let d = decide(purpose, p, &s);
            prop_assert_eq!(d.basis, purpose.basis(s.region));
            if s.restricted && !purpose.survives_restriction {
                prop_assert_eq!(d.reason, Reason::Restricted);
            }
            if d.allowed {
                prop_assert!(!s.objected(p));
                prop_assert!(!(purpose.sale_or_share && s.do_not_sell));
                prop_assert!(d.basis != LegalBasis::Consent || s.granted(p));
            }
            if s.withdrawn(p) && d.basis == LegalBasis::Consent {
                prop_assert!(!d.allowed);
            }
            if let Some(channel) = marketing_channel(&purpose.key) {
                // CheckProcessing and CanContact give one answer for a channel's purpose.
                prop_assert_eq!(d, can_contact(&c, &s, channel, MessageKind::Promotional));
            }
        }

        #[test]
        fn an_opt_out_always_stops_promotions_never_other_messages(s in arb_state(), ch in 0usize..4) {
            let c = cat();
            let channel = CHANNELS[ch];
            let opted = SubjectState { opted_out: s.opted_out | crate::domain::event::channel_bit(channel), ..s };
            prop_assert!(!can_contact(&c, &opted, channel, MessageKind::Promotional).allowed);
            prop_assert!(can_contact(&c, &opted, channel, MessageKind::Security).allowed);
        }
    }
}
