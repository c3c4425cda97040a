//! HMAC-SHA256 under a 32-byte key, built without a constructor that can fail: the key's
//! length is in its type.

use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use zeroize::Zeroizing;

/// HMAC-SHA256.
pub type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`.
///
/// HMAC's key is one hash block (64 bytes for SHA-256), and a shorter key is padded with
/// zeros to that length (RFC 2104, step 1): the block built here is that padding, so the
/// MAC is the one `new_from_slice(key)` gives, without its error for lengths a `[u8; 32]`
/// cannot have.
pub fn hmac_sha256(key: &[u8; 32]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; 64]);
    block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    HmacSha256::new((&*block).into())
}

#[cfg(test)]
mod tests {
    use hmac::Mac;

    use super::*;

    #[test]
    fn the_padded_key_gives_the_mac_of_the_key_itself() {
        for key in [[0u8; 32], [7u8; 32], std::array::from_fn(|i| i as u8)] {
            let mut ours = hmac_sha256(&key);
            let mut theirs = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("any length");
            ours.update(b"pdm");
            theirs.update(b"pdm");
            assert_eq!(ours.finalize().into_bytes(), theirs.finalize().into_bytes());
        }
    }

    #[test]
    fn rfc_4231_test_case_1_comes_out() {
        // RFC 4231 test case 1 has a 20-byte key; padded to 32 with zeros it is the same
        // HMAC key (zeros pad either way), so its published MAC must come out.
        let mut key = [0u8; 32];
        key.iter_mut().take(20).for_each(|b| *b = 0x0b);
        let mut mac = hmac_sha256(&key);
        mac.update(b"Hi There");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
