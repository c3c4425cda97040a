//! The hash chain: each entry's hash covers its position, its content and the previous
//! entry's hash, and the log's head records the last position and hash. Editing an entry
//! breaks its hash; deleting or moving one breaks a link; cutting off the tail leaves the
//! head pointing past the end.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// One access to a subject's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// When the call was answered.
    pub at: DateTime<Utc>,
    /// Who called (a service, `admin`, `client:<name>`, or `anonymous` in plaintext mode).
    pub caller: String,
    /// The gRPC method path.
    pub method: String,
    /// The subject whose data was read or changed.
    pub subject_id: String,
    /// Why, when the call said; else empty.
    pub purpose: String,
    /// W3C trace id of the call (empty when there was none).
    pub trace_id: String,
}

impl AccessEntry {
    /// The time as stored and hashed (RFC 3339, microseconds, UTC).
    pub fn at_text(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

/// A stored entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// Position: 1, 2, 3 …
    pub seq: i64,
    /// The entry.
    pub entry: AccessEntry,
    /// Hash of the previous entry ([`GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// This entry's hash.
    pub hash: Vec<u8>,
}

/// The hash of `entry` at `seq` after `prev`. Fields are length-prefixed, so moving text
/// from one field to the next changes the hash.
pub fn chain_hash(prev: &[u8], seq: i64, entry: &AccessEntry) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(seq.to_be_bytes());
    for field in [
        entry.at_text().as_str(),
        &entry.caller,
        &entry.method,
        &entry.subject_id,
        &entry.purpose,
        &entry.trace_id,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}

/// A break in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// The entry's content does not match its hash.
    Edited(i64),
    /// Entries before this one are missing.
    Missing(i64),
    /// The entry does not link to the entry before it (reordered or replaced).
    BrokenLink(i64),
    /// Entries after this one are missing (the head names a later entry).
    Truncated(i64),
}

impl Tamper {
    /// The position the problem was found at.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Edited(s) | Self::Missing(s) | Self::BrokenLink(s) | Self::Truncated(s) => *s,
        }
    }
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edited(s) => write!(f, "entry {s} was edited"),
            Self::Missing(s) => write!(f, "entries before {s} were deleted"),
            Self::BrokenLink(s) => write!(
                f,
                "entry {s} does not follow the entry before it (moved or replaced)"
            ),
            Self::Truncated(s) => write!(f, "entries after {s} were deleted"),
        }
    }
}

/// Checks a chain entry by entry, in position order, so a log of any length is checked
/// in pages.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: i64,
    prev: Vec<u8>,
    entries: u64,
    problems: Vec<Tamper>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev: GENESIS.to_vec(),
            entries: 0,
            problems: Vec::new(),
        }
    }
}

impl Verifier {
    /// Checks the next entry.
    pub fn push(&mut self, c: &ChainedEntry) {
        self.entries += 1;
        if c.seq != self.expected_seq {
            self.problems.push(Tamper::Missing(c.seq));
        } else if c.prev_hash != self.prev {
            self.problems.push(Tamper::BrokenLink(c.seq));
        }
        if chain_hash(&c.prev_hash, c.seq, &c.entry) != c.hash {
            self.problems.push(Tamper::Edited(c.seq));
        }
        self.expected_seq = c.seq + 1;
        self.prev.clone_from(&c.hash);
    }

    /// Checks the end against the recorded head (`None`: nothing was ever written) and
    /// returns the entries read and the problems found.
    pub fn finish(mut self, head: Option<(i64, Vec<u8>)>) -> (u64, Vec<Tamper>) {
        let last = self.expected_seq - 1;
        match head {
            Some((head_seq, head_hash)) if head_seq != last || head_hash != self.prev => {
                self.problems.push(Tamper::Truncated(last));
            }
            None if last > 0 => self.problems.push(Tamper::Truncated(0)),
            _ => {}
        }
        (self.entries, self.problems)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn chain(n: i64) -> Vec<ChainedEntry> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let entry = AccessEntry {
                    at: Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
                        + chrono::Duration::seconds(seq),
                    caller: "rights".into(),
                    method: "/pdm.subject.v1.SubjectDataService/ExportSubject".into(),
                    subject_id: format!("subject-{}", seq % 3),
                    purpose: String::new(),
                    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                };
                let hash = chain_hash(&prev, seq, &entry);
                let c = ChainedEntry {
                    seq,
                    entry,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                c
            })
            .collect()
    }

    fn verify(entries: &[ChainedEntry], head: Option<(i64, Vec<u8>)>) -> Vec<Tamper> {
        let mut v = Verifier::default();
        for e in entries {
            v.push(e);
        }
        v.finish(head).1
    }

    fn head(entries: &[ChainedEntry]) -> Option<(i64, Vec<u8>)> {
        entries.last().map(|e| (e.seq, e.hash.clone()))
    }

    #[test]
    fn an_intact_chain_has_no_problems() {
        let c = chain(5);
        assert!(verify(&c, head(&c)).is_empty());
        assert!(verify(&[], None).is_empty());
    }

    #[test]
    fn an_edited_entry_is_found() {
        let mut c = chain(5);
        let h = head(&c);
        c[2].entry.caller = "telemetry".into();
        assert_eq!(verify(&c, h), vec![Tamper::Edited(3)]);
    }

    #[test]
    fn a_deleted_entry_is_found() {
        let mut c = chain(5);
        let h = head(&c);
        c.remove(1);
        assert_eq!(verify(&c, h), vec![Tamper::Missing(3)]);
    }

    #[test]
    fn swapped_entries_are_found_even_with_positions_swapped_back() {
        let mut c = chain(5);
        let h = head(&c);
        c.swap(1, 2);
        // Renumbering them keeps the positions in order, but not the links or hashes.
        c[1].seq = 2;
        c[2].seq = 3;
        let problems = verify(&c, h);
        assert!(problems.contains(&Tamper::BrokenLink(2)), "{problems:?}");
        assert!(problems.contains(&Tamper::Edited(2)), "{problems:?}");
    }

    #[test]
    fn a_cut_off_tail_is_found() {
        let mut c = chain(5);
        let h = head(&c);
        c.truncate(3);
        assert_eq!(verify(&c, h), vec![Tamper::Truncated(3)]);
        // Even a log emptied together with its head is found when entries remain… and
        // entries without a head are a cut-off head.
        assert_eq!(verify(&chain(2), None), vec![Tamper::Truncated(0)]);
    }

    #[test]
    fn a_rewritten_entry_with_a_fresh_hash_breaks_the_next_link() {
        let mut c = chain(5);
        let h = head(&c);
        c[1].entry.subject_id = "someone-else".into();
        c[1].hash = chain_hash(&c[1].prev_hash, 2, &c[1].entry);
        assert_eq!(verify(&c, h), vec![Tamper::BrokenLink(3)]);
    }
}
