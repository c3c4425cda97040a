//! Cross-witnessing, the rules: who witnesses whom, and how a witnessed head is written
//! into the witness's own trail (so deleting or editing it breaks the witness's chain).

use chrono::{DateTime, Utc};

use crate::chain::{AccessEntry, ChainedEntry};

/// The method a witness entry names: the RPC that recorded it.
pub const WITNESS_METHOD: &str = "/pdm.audit.v1.AuditService/WitnessHead";

/// Length of a chain MAC.
pub const MAC_LEN: usize = 32;

/// The services that witness `me`'s head, in the order to try them: the ring's members
/// after `me`, wrapping around. Empty when `me` is not in the ring or is alone in it.
pub fn witnesses_of<'a>(ring: &'a [String], me: &str) -> Vec<&'a str> {
    let Some(at) = ring.iter().position(|s| s == me) else {
        return Vec::new();
    };
    ring[at + 1..]
        .iter()
        .chain(&ring[..at])
        .map(String::as_str)
        .filter(|s| *s != me)
        .collect()
}

/// The entry a witness appends to its own trail: `service`'s head was (`seq`, `mac`) at
/// `at`. It names no subject, so no subject's access report shows it.
pub fn witness_entry(
    service: &str,
    seq: i64,
    mac: &[u8],
    at: DateTime<Utc>,
    trace_id: String,
) -> AccessEntry {
    AccessEntry {
        at,
        caller: service.to_owned(),
        method: WITNESS_METHOD.to_owned(),
        subject_id: String::new(),
        purpose: format!("head {seq} {}", hex(mac)),
        trace_id,
    }
}

/// The head a witness entry records: (seq, mac, when), or None if it is not one.
pub fn witnessed_head(c: &ChainedEntry) -> Option<(i64, Vec<u8>, DateTime<Utc>)> {
    if c.entry.method != WITNESS_METHOD || !c.entry.subject_id.is_empty() {
        return None;
    }
    let mut parts = c.entry.purpose.strip_prefix("head ")?.split(' ');
    let seq = parts.next()?.parse::<i64>().ok().filter(|s| *s > 0)?;
    let mac = unhex(parts.next()?).filter(|m| m.len() == MAC_LEN)?;
    parts.next().is_none().then_some((seq, mac, c.entry.at))
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase or uppercase hexadecimal.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_witnesses_are_the_next_services_of_the_ring() {
        let r = ring(&["consent", "identity", "rights"]);
        assert_eq!(witnesses_of(&r, "consent"), ["identity", "rights"]);
        assert_eq!(witnesses_of(&r, "rights"), ["consent", "identity"]);
        assert!(witnesses_of(&r, "telemetry").is_empty());
        assert!(witnesses_of(&ring(&["identity"]), "identity").is_empty());
    }

    #[test]
    fn a_witness_entry_reads_back_and_nothing_else_does() {
        let at = Utc::now();
        let mac = vec![0xab; MAC_LEN];
        let entry = witness_entry("identity", 42, &mac, at, String::new());
        let chained = |entry: AccessEntry| ChainedEntry {
            seq: 7,
            entry,
            prev_hash: Vec::new(),
            hash: Vec::new(),
        };
        assert_eq!(witnessed_head(&chained(entry.clone())), Some((42, mac, at)));
        for purpose in ["head 42", "head -1 ab", "head 1 abc", "x 1 ab", "head 1 zz"] {
            let mut bad = entry.clone();
            bad.purpose = purpose.into();
            assert_eq!(witnessed_head(&chained(bad)), None, "{purpose}");
        }
        let mut access = entry;
        access.subject_id = "0190a0a0-0000-7000-8000-000000000000".into();
        assert_eq!(witnessed_head(&chained(access)), None);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("é1"), None);
    }
}
