//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 30-second
//! steps, 6 digits, the step before and after accepted for clock drift, and a step once
//! used never accepted again for the same operator (the caller keeps the last step).

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

/// The HOTP value of `counter` (RFC 4226 §5.3), `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> Option<u32> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).ok()?;
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash.last()? & 0x0f);
    let bytes: [u8; 4] = hash.get(offset..offset + 4)?.try_into().ok()?;
    let code = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    Some(code % 10u32.pow(digits))
}

/// The step `unix_secs` falls in.
pub fn step(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The step `code` is valid in at `unix_secs` (the current one, or one before or after),
/// if it is valid and that step is later than `last_used` (a code is used once).
pub fn verify(secret: &[u8], code: &str, unix_secs: i64, last_used: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step(unix_secs);
    let mut found = None;
    // Every candidate is computed, so the time taken says nothing about which matched.
    for candidate in [now - 1, now, now + 1] {
        let counter = u64::try_from(candidate).ok()?;
        if hotp(secret, counter, DIGITS) == Some(wanted) && found.is_none() {
            found = Some(candidate);
        }
    }
    found.filter(|s| last_used.is_none_or(|last| *s > last))
}

/// RFC 4648 base32, no padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The provisioning URI an authenticator app scans (Key Uri Format):
/// `otpauth://totp/<issuer>:<name>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn provisioning_uri(issuer: &str, name: &str, secret: &[u8]) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let label = format!("{}:{}", enc(issuer), enc(name)).replace('+', "%20");
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret),
        enc(issuer).replace('+', "%20"),
    )
}

/// The secret a provisioning URI carries, as an authenticator app reads it (what the
/// tests and the page-time benchmark use to make codes); None when it carries none or its
/// `secret` is not base32.
pub fn secret_of_uri(uri: &str) -> Option<Vec<u8>> {
    let encoded = uri.split_once("secret=")?.1.split('&').next()?;
    let (mut bits, mut buffer, mut out) = (0u32, 0u32, Vec::new());
    for c in encoded.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret.
    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn the_rfc_4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(SECRET, counter as u64, 6), Some(*code), "{counter}");
        }
    }

    #[test]
    fn the_rfc_6238_totp_vectors_with_sha1() {
        // (time, 8-digit code) from RFC 6238 appendix B.
        for (time, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(SECRET, step(time) as u64, 8), Some(code), "at {time}");
        }
    }

    #[test]
    fn a_code_works_one_step_either_side_and_only_once() {
        let at = 1_234_567_890;
        let code = format!("{:06}", hotp(SECRET, step(at) as u64, 6).unwrap_or(0));
        assert_eq!(verify(SECRET, &code, at, None), Some(step(at)));
        assert_eq!(verify(SECRET, &code, at + 30, None), Some(step(at)));
        assert_eq!(verify(SECRET, &code, at - 30, None), Some(step(at)));
        assert_eq!(verify(SECRET, &code, at + 60, None), None, "two steps late");
        // Replayed: the step was used already.
        assert_eq!(verify(SECRET, &code, at, Some(step(at))), None);
        assert_eq!(verify(SECRET, "12345", at, None), None);
        assert_eq!(verify(SECRET, "abcdef", at, None), None);
    }

    #[test]
    fn secrets_are_base32_in_the_provisioning_uri() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = provisioning_uri("pdm console", "alice", SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/pdm%20console:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=pdm%20console&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(secret_of_uri(&uri).as_deref(), Some(SECRET));
        assert_eq!(
            secret_of_uri(&provisioning_uri("x", "y", b"foobar")).as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(secret_of_uri("otpauth://totp/x?secret=abc1"), None);
        assert_eq!(secret_of_uri("otpauth://totp/x"), None);
    }
}
