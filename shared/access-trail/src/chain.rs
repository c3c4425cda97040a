//! The chain: each entry's MAC (HMAC-SHA256 under a key derived from the KEK) covers its
//! position, its content and the previous entry's MAC, and the log's head records the
//! last position and MAC. Editing an entry breaks its MAC, and without the key no MAC can
//! be recomputed; deleting or moving one breaks a link; cutting off the tail leaves the
//! head pointing past the end. What the chain alone cannot show (a tail cut off together
//! with the head, a wiped trail, an older copy restored) shows against the heads that
//! witnesses and checkpoints saw: [`Expected`].
//!
//! Trails written before keys were chained with plain SHA-256 ([`Seal::Legacy`]); they are
//! re-sealed with the key once, at the first start that has one (see `store::reseal`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::keys::MacKey;

/// The MAC before the first entry.
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

/// What chains the entries.
#[derive(Debug, Clone)]
pub enum Seal {
    /// Plain SHA-256: anyone can recompute it. Only to check trails written before keys.
    Legacy,
    /// HMAC-SHA256 with the service's chain key.
    Keyed(MacKey),
}

impl Seal {
    /// The seal of `entry` at `seq` after `prev`.
    pub fn seal(&self, prev: &[u8], seq: i64, entry: &AccessEntry) -> Vec<u8> {
        let message = encode(prev, seq, entry);
        match self {
            Self::Legacy => Sha256::digest(&message).to_vec(),
            Self::Keyed(key) => key.mac(|m| hmac::Mac::update(m, &message)),
        }
    }

    /// Whether `tag` is the seal of `entry` at `seq` after `prev`.
    pub fn check(&self, tag: &[u8], prev: &[u8], seq: i64, entry: &AccessEntry) -> bool {
        let message = encode(prev, seq, entry);
        match self {
            Self::Legacy => Sha256::digest(&message).as_slice() == tag,
            Self::Keyed(key) => key.verify(tag, |m| hmac::Mac::update(m, &message)),
        }
    }
}

/// What is sealed: the previous seal, the position and the fields, length-prefixed so
/// moving text from one field to the next changes the seal.
fn encode(prev: &[u8], seq: i64, entry: &AccessEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(prev);
    out.extend_from_slice(&seq.to_be_bytes());
    for field in [
        entry.at_text().as_str(),
        &entry.caller,
        &entry.method,
        &entry.subject_id,
        &entry.purpose,
        &entry.trace_id,
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// A head the trail must still contain: seen by a witness or signed in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Position of the head (0: an empty trail, which holds nothing).
    pub seq: i64,
    /// Its MAC.
    pub mac: Vec<u8>,
    /// Who saw it, for people ("witness consent", "the checkpoint").
    pub by: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// A break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The entry's content does not match its MAC.
    Edited(i64),
    /// Entries before this one are missing.
    Missing(i64),
    /// The entry does not link to the entry before it (reordered or replaced).
    BrokenLink(i64),
    /// Entries after this one are missing (the head names a later entry).
    Truncated(i64),
    /// The trail ends at `ends_at`, before the head at `seen` that `by` saw.
    RolledBack {
        /// The trail's last position now.
        ends_at: i64,
        /// The head that was seen.
        seen: i64,
        /// Who saw it.
        by: String,
    },
    /// The entry at `seq` is not the one `by` saw there.
    Rewritten {
        /// The position.
        seq: i64,
        /// Who saw it.
        by: String,
    },
    /// The checkpoint's signature does not verify.
    ForgedCheckpoint,
}

impl Tamper {
    /// The position the problem was found at.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Edited(s) | Self::Missing(s) | Self::BrokenLink(s) | Self::Truncated(s) => *s,
            Self::RolledBack { seen, .. } => *seen,
            Self::Rewritten { seq, .. } => *seq,
            Self::ForgedCheckpoint => 0,
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
            Self::RolledBack { ends_at, seen, by } => write!(
                f,
                "the trail ends at entry {ends_at} but {by} saw it reach entry {seen}: \
                 truncated, wiped or restored from an older copy"
            ),
            Self::Rewritten { seq, by } => write!(
                f,
                "entry {seq} is not the entry {by} saw there: the trail was rewritten \
                 (or restored from an older copy and extended)"
            ),
            Self::ForgedCheckpoint => write!(
                f,
                "the checkpoint's signature does not verify: altered, or not this service's"
            ),
        }
    }
}

/// Checks a chain entry by entry, in position order, so a log of any length is checked
/// in pages.
///
/// A trail whose oldest entries were purged under its retention rule starts later than 1:
/// the first entry kept is taken as the start (its MAC covers its link to the entry before
/// it), and the start is accepted only if the last purge entry of the chain names it (see
/// [`crate::retention`]); otherwise the entries before it are reported missing.
#[derive(Debug)]
pub struct Verifier {
    seal: Seal,
    expected_seq: i64,
    prev: Vec<u8>,
    entries: u64,
    problems: Vec<Tamper>,
    /// Where the trail starts, when its first entry kept is not the first ever written.
    start: Option<i64>,
    /// The start the last purge entry read so far names.
    purged_to: Option<i64>,
    /// Heads still to meet, by position.
    pending: BTreeMap<i64, Vec<Expected>>,
    /// Sources already reported as rewritten (the first divergence says it all).
    rewritten: Vec<String>,
}

impl Verifier {
    /// A verifier of entries sealed with `seal`, which must also contain `expected`.
    pub fn new(seal: Seal, expected: Vec<Expected>) -> Self {
        let mut pending: BTreeMap<i64, Vec<Expected>> = BTreeMap::new();
        for e in expected.into_iter().filter(|e| e.seq > 0) {
            pending.entry(e.seq).or_default().push(e);
        }
        Self {
            seal,
            expected_seq: 1,
            prev: GENESIS.to_vec(),
            entries: 0,
            problems: Vec::new(),
            start: None,
            purged_to: None,
            pending,
            rewritten: Vec::new(),
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, c: &ChainedEntry) {
        self.entries += 1;
        if self.entries == 1 && c.seq > 1 {
            self.start_at(c);
        }
        if let Some(start) = crate::retention::purged_start(c) {
            self.purged_to = Some(start);
        }
        if c.seq != self.expected_seq {
            self.problems.push(Tamper::Missing(c.seq));
        } else if c.prev_hash != self.prev {
            self.problems.push(Tamper::BrokenLink(c.seq));
        }
        if !self.seal.check(&c.hash, &c.prev_hash, c.seq, &c.entry) {
            self.problems.push(Tamper::Edited(c.seq));
        }
        // Heads at skipped positions, and here: a MAC covers the whole chain before it,
        // so the first one that differs is where the trail left what was seen.
        let due: Vec<i64> = self.pending.range(..=c.seq).map(|(s, _)| *s).collect();
        for seq in due {
            for e in self.pending.remove(&seq).unwrap_or_default() {
                if e.seq != c.seq || e.mac != c.hash {
                    self.rewritten(e);
                }
            }
        }
        self.expected_seq = c.seq + 1;
        self.prev.clone_from(&c.hash);
    }

    /// Takes `c`, the first entry read, as the start of a trail whose earlier entries were
    /// purged: heads seen before it can no longer be compared, except the one just before
    /// it, which is the link `c` carries.
    fn start_at(&mut self, c: &ChainedEntry) {
        self.start = Some(c.seq);
        self.expected_seq = c.seq;
        self.prev.clone_from(&c.prev_hash);
        let before: Vec<i64> = self.pending.range(..c.seq).map(|(s, _)| *s).collect();
        for seq in before {
            for e in self.pending.remove(&seq).unwrap_or_default() {
                if e.seq == c.seq - 1 && e.mac != c.prev_hash {
                    self.rewritten(e);
                }
            }
        }
    }

    fn rewritten(&mut self, e: Expected) {
        if !self.rewritten.contains(&e.by) {
            self.rewritten.push(e.by.clone());
            self.problems.push(Tamper::Rewritten {
                seq: e.seq,
                by: e.by,
            });
        }
    }

    /// Records that the checkpoint given did not verify.
    pub fn forged_checkpoint(&mut self) {
        self.problems.push(Tamper::ForgedCheckpoint);
    }

    /// Checks the end against the recorded head (`None`: nothing was ever written) and
    /// returns the entries read and the problems found.
    pub fn finish(mut self, head: Option<(i64, Vec<u8>)>) -> (u64, Vec<Tamper>) {
        // A later start than 1 is a purge only if the last purge entry says so: deleting
        // more, or the purge entry itself, leaves entries missing.
        if let Some(start) = self.start
            && self.purged_to != Some(start)
        {
            self.problems.insert(0, Tamper::Missing(start));
        }
        let last = self.expected_seq - 1;
        match head {
            Some((head_seq, head_hash)) if head_seq != last || head_hash != self.prev => {
                self.problems.push(Tamper::Truncated(last));
            }
            None if last > 0 => self.problems.push(Tamper::Truncated(0)),
            _ => {}
        }
        // Heads beyond the end: the furthest each source saw.
        let mut beyond: BTreeMap<String, i64> = BTreeMap::new();
        for e in std::mem::take(&mut self.pending).into_values().flatten() {
            let seen = beyond.entry(e.by).or_insert(e.seq);
            *seen = (*seen).max(e.seq);
        }
        for (by, seen) in beyond {
            self.problems.push(Tamper::RolledBack {
                ends_at: last,
                seen,
                by,
            });
        }
        (self.entries, self.problems)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::keys::AuditKeys;

    fn keyed() -> Seal {
        Seal::Keyed(AuditKeys::derive(&[9; 32], "identity").chain)
    }

    fn sealed(seal: &Seal, n: i64) -> Vec<ChainedEntry> {
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
                let hash = seal.seal(&prev, seq, &entry);
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

    fn chain(n: i64) -> Vec<ChainedEntry> {
        sealed(&keyed(), n)
    }

    fn check(
        entries: &[ChainedEntry],
        head: Option<(i64, Vec<u8>)>,
        expected: Vec<Expected>,
    ) -> Vec<Tamper> {
        let mut v = Verifier::new(keyed(), expected);
        for e in entries {
            v.push(e);
        }
        v.finish(head).1
    }

    fn verify(entries: &[ChainedEntry], head: Option<(i64, Vec<u8>)>) -> Vec<Tamper> {
        check(entries, head, Vec::new())
    }

    fn head(entries: &[ChainedEntry]) -> Option<(i64, Vec<u8>)> {
        entries.last().map(|e| (e.seq, e.hash.clone()))
    }

    fn seen(by: &str, c: &ChainedEntry) -> Expected {
        Expected {
            seq: c.seq,
            mac: c.hash.clone(),
            by: by.into(),
            at: None,
        }
    }

    #[test]
    fn an_intact_chain_has_no_problems() {
        let c = chain(5);
        assert!(verify(&c, head(&c)).is_empty());
        assert!(verify(&[], None).is_empty());
        assert!(
            check(
                &c,
                head(&c),
                vec![seen("witness consent", &c[2]), seen("x", &c[4])]
            )
            .is_empty()
        );
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
        // Renumbering them keeps the positions in order, but not the links or MACs.
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
        // Entries without a head are a cut-off head.
        assert_eq!(verify(&chain(2), None), vec![Tamper::Truncated(0)]);
    }

    #[test]
    fn a_chain_recomputed_with_public_sha256_is_found_entry_by_entry() {
        // The old attack: edit an entry, recompute it and every later seal and the head
        // with the public formula. Without the key no seal matches.
        let mut c = sealed(&Seal::Legacy, 4);
        c[1].entry.caller = "admin".into();
        for i in 1..c.len() {
            let prev = c[i - 1].hash.clone();
            c[i].hash = Seal::Legacy.seal(&prev, c[i].seq, &c[i].entry);
            c[i].prev_hash = prev;
        }
        let tampered = head(&c);
        assert!(
            check_legacy(&c, tampered.clone()).is_empty(),
            "the public formula cannot tell"
        );
        let problems = verify(&c, tampered);
        assert_eq!(
            problems,
            (1..=4).map(Tamper::Edited).collect::<Vec<_>>(),
            "{problems:?}"
        );
    }

    fn check_legacy(entries: &[ChainedEntry], head: Option<(i64, Vec<u8>)>) -> Vec<Tamper> {
        let mut v = Verifier::new(Seal::Legacy, Vec::new());
        for e in entries {
            v.push(e);
        }
        v.finish(head).1
    }

    #[test]
    fn a_tail_cut_off_with_its_head_is_found_by_what_a_witness_saw() {
        let c = chain(5);
        let witnessed = vec![
            seen("witness consent", &c[2]),
            seen("witness consent", &c[4]),
        ];
        let cut = &c[..3];
        assert!(
            verify(cut, head(cut)).is_empty(),
            "the chain alone is whole"
        );
        assert_eq!(
            check(cut, head(cut), witnessed.clone()),
            vec![Tamper::RolledBack {
                ends_at: 3,
                seen: 5,
                by: "witness consent".into()
            }]
        );
        // Wiped: nothing left at all.
        assert_eq!(
            check(&[], None, witnessed),
            vec![Tamper::RolledBack {
                ends_at: 0,
                seen: 5,
                by: "witness consent".into()
            }]
        );
    }

    #[test]
    fn a_restored_copy_extended_past_the_witnessed_head_is_found_once() {
        let c = chain(5);
        let witnessed = vec![
            seen("witness consent", &c[1]),
            seen("witness consent", &c[3]),
            seen("the checkpoint", &c[4]),
        ];
        // An older copy (up to entry 1) that went on with other entries.
        let mut other = chain(1);
        let mut prev = other[0].hash.clone();
        for seq in 2..=6 {
            let mut entry = c[0].entry.clone();
            entry.caller = format!("client:{seq}");
            let hash = keyed().seal(&prev, seq, &entry);
            other.push(ChainedEntry {
                seq,
                entry,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        assert_eq!(
            check(&other, head(&other), witnessed),
            vec![
                Tamper::Rewritten {
                    seq: 2,
                    by: "witness consent".into()
                },
                Tamper::Rewritten {
                    seq: 5,
                    by: "the checkpoint".into()
                },
            ]
        );
    }

    #[test]
    fn a_rewritten_entry_with_a_fresh_seal_breaks_the_next_link() {
        let mut c = chain(5);
        let h = head(&c);
        c[1].entry.subject_id = "someone-else".into();
        c[1].hash = keyed().seal(&c[1].prev_hash, 2, &c[1].entry);
        assert_eq!(verify(&c, h), vec![Tamper::BrokenLink(3)]);
    }
}
