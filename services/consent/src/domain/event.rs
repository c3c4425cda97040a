//! What a ledger entry records, as the projection needs it.

use pdm_proto::consent::v1::{Channel, LedgerEntryKind};

/// Bit of a channel in opt-out sets.
pub fn channel_bit(channel: Channel) -> u8 {
    match channel {
        Channel::Unspecified => 0,
        Channel::Email => 1,
        Channel::Ads => 2,
        Channel::Sms => 4,
        Channel::Push => 8,
    }
}

/// Channels a subject can opt out of, in order.
pub const CHANNELS: [Channel; 4] = [Channel::Email, Channel::Ads, Channel::Sms, Channel::Push];

/// One ledger entry, resolved against the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: LedgerEntryKind,
    /// Purpose index, for consent and objection entries (`None` if the purpose has since
    /// left the catalogue).
    pub purpose: Option<usize>,
    /// Channel, for opt-out entries.
    pub channel: Channel,
}
