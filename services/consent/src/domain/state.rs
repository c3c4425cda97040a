//! A subject's current state: the projection of their ledger entries, in order.

use pdm_proto::{common::v1::Region, consent::v1::LedgerEntryKind};

use super::event::{Change, channel_bit};

/// Current state; purposes are bits by catalogue index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectState {
    /// Region (from identity).
    pub region: Region,
    /// Purposes with consent in force.
    pub granted: u64,
    /// Purposes whose consent was withdrawn (and not given again).
    pub withdrawn: u64,
    /// Purposes objected to.
    pub objected: u64,
    /// Channels opted out of promotional messages.
    pub opted_out: u8,
    /// Processing restricted.
    pub restricted: bool,
    /// Sale and sharing refused.
    pub do_not_sell: bool,
}

fn bit(index: usize) -> u64 {
    1u64.checked_shl(u32::try_from(index).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

impl SubjectState {
    /// A subject with no entries yet.
    pub fn new(region: Region) -> Self {
        Self {
            region,
            ..Self::default()
        }
    }

    /// Applies one entry. Entries for purposes no longer in the catalogue change nothing.
    pub fn apply(&mut self, change: &Change) {
        let purpose_bit = change.purpose.map_or(0, bit);
        match change.kind {
            LedgerEntryKind::Grant | LedgerEntryKind::ExplicitGrant => {
                self.granted |= purpose_bit;
                self.withdrawn &= !purpose_bit;
            }
            LedgerEntryKind::Withdraw => {
                if self.granted & purpose_bit != 0 || self.withdrawn & purpose_bit != 0 {
                    self.withdrawn |= purpose_bit;
                }
                self.granted &= !purpose_bit;
            }
            LedgerEntryKind::Restrict => self.restricted = true,
            LedgerEntryKind::Unrestrict => self.restricted = false,
            LedgerEntryKind::Object => self.objected |= purpose_bit,
            LedgerEntryKind::WithdrawObjection => self.objected &= !purpose_bit,
            LedgerEntryKind::OptOut => self.opted_out |= channel_bit(change.channel),
            LedgerEntryKind::OptIn => self.opted_out &= !channel_bit(change.channel),
            LedgerEntryKind::DoNotSell => self.do_not_sell = true,
            LedgerEntryKind::AllowSell => self.do_not_sell = false,
            LedgerEntryKind::Erased => *self = Self::new(self.region),
            LedgerEntryKind::Unspecified => {}
        }
    }

    /// Whether consent for the purpose is in force.
    pub fn granted(&self, purpose: usize) -> bool {
        self.granted & bit(purpose) != 0
    }

    /// Whether consent for the purpose was withdrawn.
    pub fn withdrawn(&self, purpose: usize) -> bool {
        self.withdrawn & bit(purpose) != 0
    }

    /// Whether the subject objected to the purpose.
    pub fn objected(&self, purpose: usize) -> bool {
        self.objected & bit(purpose) != 0
    }

    /// Whether the subject opted out of promotional messages on the channel.
    pub fn opted_out(&self, channel: pdm_proto::consent::v1::Channel) -> bool {
        self.opted_out & channel_bit(channel) != 0
    }
}

#[cfg(test)]
mod tests {
    use pdm_proto::consent::v1::Channel;

    use super::*;

    fn change(kind: LedgerEntryKind, purpose: Option<usize>) -> Change {
        Change {
            kind,
            purpose,
            channel: Channel::Unspecified,
        }
    }

    #[test]
    fn grant_then_withdraw_then_grant() {
        let mut s = SubjectState::new(Region::Eea);
        assert!(!s.granted(3) && !s.withdrawn(3));
        s.apply(&change(LedgerEntryKind::Grant, Some(3)));
        assert!(s.granted(3) && !s.withdrawn(3));
        s.apply(&change(LedgerEntryKind::Withdraw, Some(3)));
        assert!(!s.granted(3) && s.withdrawn(3));
        s.apply(&change(LedgerEntryKind::Grant, Some(3)));
        assert!(s.granted(3) && !s.withdrawn(3));
    }

    #[test]
    fn withdrawing_what_was_never_given_is_not_a_withdrawal() {
        let mut s = SubjectState::new(Region::Eea);
        s.apply(&change(LedgerEntryKind::Withdraw, Some(1)));
        assert!(!s.withdrawn(1));
    }

    #[test]
    fn flags_and_channels() {
        let mut s = SubjectState::new(Region::UsCa);
        s.apply(&Change {
            kind: LedgerEntryKind::OptOut,
            purpose: None,
            channel: Channel::Sms,
        });
        assert!(s.opted_out(Channel::Sms) && !s.opted_out(Channel::Email));
        s.apply(&change(LedgerEntryKind::DoNotSell, None));
        s.apply(&change(LedgerEntryKind::Restrict, None));
        assert!(s.do_not_sell && s.restricted);
        s.apply(&change(LedgerEntryKind::Erased, None));
        assert_eq!(s, SubjectState::new(Region::UsCa));
    }

    #[test]
    fn entries_for_retired_purposes_change_nothing() {
        let mut s = SubjectState::new(Region::Uk);
        s.apply(&change(LedgerEntryKind::Grant, None));
        assert_eq!(s, SubjectState::new(Region::Uk));
    }
}
