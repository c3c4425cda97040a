//! Unsubscribe links ("Marketing Our Services": "you can opt out of receiving marketing
//! communications from us … by following the unsubscribe instructions in any marketing
//! email"): each promotional message carries a token for one opt-out of its channel.
//!
//! A token is `<link id>.<signature>`, both base64url: 16 random bytes and the first 16
//! bytes of a keyed HMAC of the id (the blind-index key derived from the KEK). It names
//! no one (the subject and channel are in the link's row), a forged or altered token is
//! refused before the database is read, and the row makes it single-use and expiring.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use pdm_crypto::BlindIndex;

/// The HMAC domain of link signatures.
const DOMAIN: &str = "unsubscribe-link/v1";
/// Bytes of the random link id.
pub const ID_BYTES: usize = 16;
/// Bytes of the signature kept (128 bits).
const SIGNATURE_BYTES: usize = 16;
/// The longest token accepted; real ones are 22 + 1 + 22 characters.
pub const MAX_TOKEN: usize = 128;
/// Default validity of a link, in days (newsletters are read weeks later).
pub const DEFAULT_VALID_DAYS: u32 = 90;
/// Longest validity that may be configured, in days.
pub const MAX_VALID_DAYS: u32 = 365;

fn signature(index: &BlindIndex, id: &str) -> String {
    let mac = index.compute(DOMAIN, id);
    URL_SAFE_NO_PAD.encode(&mac[..SIGNATURE_BYTES])
}

/// The token to put in the message for the link `id` (base64url of [`ID_BYTES`] random
/// bytes, as `pdm_crypto::random_token` makes them).
pub fn token(index: &BlindIndex, id: &str) -> String {
    format!("{id}.{}", signature(index, id))
}

/// The link id of an authentic token, or `None` for anything forged, altered or malformed.
pub fn verify(index: &BlindIndex, token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (id, given) = token.split_once('.')?;
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    if raw.len() != ID_BYTES {
        return None;
    }
    let expected = signature(index, id);
    // Constant time: the comparison must not tell a forger how much of it was right.
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then(|| id.to_owned())
}

/// What a presented link may still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not used and in date: it records the opt-out.
    Usable,
    /// Used before: the opt-out is already recorded; nothing more is written.
    Used,
    /// Past its validity.
    Expired,
}

/// The state of a link issued to expire at `expires_at`, used at `used_at` (if ever).
pub fn state(
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> LinkState {
    if used_at.is_some() {
        LinkState::Used
    } else if now >= expires_at {
        LinkState::Expired
    } else {
        LinkState::Usable
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use pdm_crypto::Keyring;

    use super::*;

    fn keyring(byte: u8) -> Keyring {
        Keyring::new(&[byte; 32])
    }

    #[test]
    fn a_token_names_no_one_and_verifies_only_under_its_key() {
        let k = keyring(7);
        let id = URL_SAFE_NO_PAD.encode([42; ID_BYTES]);
        let token = token(k.blind_index(), &id);
        assert_eq!(verify(k.blind_index(), &token), Some(id.clone()));
        assert!(token.len() <= MAX_TOKEN);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "fits a URL as it is: {token}"
        );
        assert_eq!(
            verify(keyring(8).blind_index(), &token),
            None,
            "another KEK"
        );
    }

    #[test]
    fn forged_altered_and_malformed_tokens_are_refused() {
        let k = keyring(7);
        let id = URL_SAFE_NO_PAD.encode([1; ID_BYTES]);
        let token = token(k.blind_index(), &id);
        let other = super::token(k.blind_index(), &URL_SAFE_NO_PAD.encode([2; ID_BYTES]));
        let other_signature = other.split_once('.').map(|(_, s)| s).unwrap_or_default();
        for bad in [
            format!("{id}.{other_signature}"),
            format!("{id}."),
            id.clone(),
            format!("{token}x"),
            format!("x{token}"),
            String::new(),
            ".".into(),
            "a".repeat(MAX_TOKEN + 1),
            format!("{}.{}", URL_SAFE_NO_PAD.encode([1; 8]), other_signature),
        ] {
            assert_eq!(verify(k.blind_index(), &bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_link_is_single_use_and_expires() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let expires = now + Duration::days(90);
        assert_eq!(state(expires, None, now), LinkState::Usable);
        assert_eq!(state(expires, Some(now), now), LinkState::Used);
        assert_eq!(state(expires, None, expires), LinkState::Expired);
        assert_eq!(
            state(expires, Some(now), expires + Duration::days(1)),
            LinkState::Used,
            "a used link says so even after it expired"
        );
    }
}
