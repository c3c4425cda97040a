//! How long the access trail is kept (issue 16: "access trails ... get rules too"): the
//! retention service's category [`CATEGORY`], sent to every service in `PurgeExpired`.
//!
//! A chain cannot lose entries from its middle without breaking, so a purge deletes a
//! prefix only: every entry before the first one still within the period or naming a
//! subject under a legal hold. In the same transaction it appends a purge entry naming the
//! position the trail now starts at ([`purge_entry`]); it is sealed like any entry, so only
//! the service's key can write one, and the [`crate::chain::Verifier`] accepts a trail
//! starting later than 1 only when its last purge entry names that start.

use chrono::{DateTime, Utc};
use pdm_proto::subject::v1::{LegalHold, PurgeRule, RetentionTrigger};

use crate::chain::{AccessEntry, ChainedEntry};

/// The retention category of access-trail entries.
pub const CATEGORY: &str = "audit.access";
/// The method a purge entry names (no RPC of that name: the entry is the purge's own).
pub const PURGE_METHOD: &str = "/pdm.audit.v1.AuditService/PurgeTrail";

/// What a purge of the trail is asked to do, from a `PurgeExpired` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailRule {
    /// Entries written before this time have expired.
    pub cutoff: DateTime<Utc>,
    /// Subjects under a hold covering the trail: their entries, and all after the first
    /// of them, stay.
    pub held_subjects: Vec<String>,
    /// Holds that blocked entries, to report back.
    pub hold_ids: Vec<String>,
    /// A hold on every subject covers the trail: nothing is deleted.
    pub blanket: bool,
}

/// The trail's rule among `rules`, with the holds that cover it; `None` when the request
/// names no rule for [`CATEGORY`] counted from each entry's time (any other trigger means
/// nothing here: an entry has no account closure of its own) or its cutoff is missing.
pub fn trail_rule(rules: &[PurgeRule], holds: &[LegalHold]) -> Option<TrailRule> {
    let rule = rules.iter().find(|r| r.category == CATEGORY)?;
    if rule.trigger != RetentionTrigger::EventTime as i32 {
        return None;
    }
    let cutoff = rule
        .cutoff
        .as_ref()
        .and_then(pdm_core::convert::from_timestamp)?;
    let covering: Vec<&LegalHold> = holds
        .iter()
        .filter(|h| h.category.is_empty() || h.category == CATEGORY)
        .collect();
    Some(TrailRule {
        cutoff,
        held_subjects: covering
            .iter()
            .filter(|h| !h.subject_id.is_empty())
            .map(|h| h.subject_id.clone())
            .collect(),
        hold_ids: covering.iter().map(|h| h.hold_id.clone()).collect(),
        blanket: covering.iter().any(|h| h.subject_id.is_empty()),
    })
}

/// The entry a purge appends: the trail now starts at `start`. It names no subject, so no
/// subject's access report shows it; `caller` is who asked for the purge.
pub fn purge_entry(start: i64, caller: &str, at: DateTime<Utc>) -> AccessEntry {
    AccessEntry {
        at,
        caller: caller.to_owned(),
        method: PURGE_METHOD.to_owned(),
        subject_id: String::new(),
        purpose: format!("{CATEGORY} start {start}"),
        trace_id: String::new(),
    }
}

/// The start a purge entry names, or None if `c` is not one.
pub fn purged_start(c: &ChainedEntry) -> Option<i64> {
    if c.entry.method != PURGE_METHOD || !c.entry.subject_id.is_empty() {
        return None;
    }
    let rest = c.entry.purpose.strip_prefix(CATEGORY)?;
    rest.strip_prefix(" start ")?
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 1)
}

/// The first position to keep: the first entry still within the period or naming a held
/// subject (`first_kept`), else the next position to be written (every entry expired).
pub fn purge_start(first_kept: Option<i64>, head: i64) -> i64 {
    first_kept.unwrap_or(head + 1).min(head + 1)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use pdm_proto::subject::v1::{LegalHold, PurgeRule, RetentionTrigger};

    use super::*;
    use pdm_core::convert::timestamp;

    use crate::{
        chain::{GENESIS, Seal, Tamper, Verifier},
        keys::AuditKeys,
    };

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn seal() -> Seal {
        Seal::Keyed(AuditKeys::derive(&[5; 32], "identity").chain)
    }

    /// Appends `entries` after `chain`, sealed.
    fn extend(chain: &mut Vec<ChainedEntry>, entries: Vec<AccessEntry>) {
        let mut prev = chain.last().map_or(GENESIS.to_vec(), |c| c.hash.clone());
        let mut seq = chain.last().map_or(0, |c| c.seq);
        for entry in entries {
            seq += 1;
            let hash = seal().seal(&prev, seq, &entry);
            chain.push(ChainedEntry {
                seq,
                entry,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
    }

    fn access(seconds: i64) -> AccessEntry {
        AccessEntry {
            at: at(seconds),
            caller: "rights".into(),
            method: "/pdm.identity.v1.IdentityService/GetAccount".into(),
            subject_id: "0190a8c4-0000-7000-8000-000000000001".into(),
            purpose: String::new(),
            trace_id: String::new(),
        }
    }

    fn verify(chain: &[ChainedEntry]) -> Vec<Tamper> {
        let mut v = Verifier::new(seal(), Vec::new());
        for c in chain {
            v.push(c);
        }
        v.finish(chain.last().map(|c| (c.seq, c.hash.clone()))).1
    }

    /// A trail of 6 accesses with the first 4 purged, as `store::purge_before` leaves it.
    fn purged() -> Vec<ChainedEntry> {
        let mut chain = Vec::new();
        extend(&mut chain, (1..=6).map(access).collect());
        extend(&mut chain, vec![purge_entry(5, "retention", at(100))]);
        chain.drain(..4);
        chain
    }

    #[test]
    fn a_purged_prefix_verifies_when_the_purge_entry_names_the_start() {
        // Policy, "How long we keep your information": old entries go, the rest still
        // verifies.
        let chain = purged();
        assert_eq!(chain[0].seq, 5);
        assert!(verify(&chain).is_empty(), "{:?}", verify(&chain));
    }

    #[test]
    fn deleting_more_than_was_purged_is_still_found() {
        let mut chain = purged();
        chain.remove(0);
        assert_eq!(verify(&chain), vec![Tamper::Missing(6)]);
    }

    #[test]
    fn a_prefix_deleted_without_a_purge_entry_is_found() {
        let mut chain = Vec::new();
        extend(&mut chain, (1..=6).map(access).collect());
        chain.drain(..2);
        assert_eq!(verify(&chain), vec![Tamper::Missing(3)]);
    }

    #[test]
    fn a_purge_entry_cannot_be_forged_without_the_key() {
        let mut chain = Vec::new();
        extend(&mut chain, (1..=6).map(access).collect());
        // Whoever deletes entries 1-2 and writes a purge entry must seal it: without the
        // key, with the public formula at best.
        let last = chain.last().cloned().expect("entries");
        let entry = purge_entry(3, "retention", at(100));
        let hash = Seal::Legacy.seal(&last.hash, 7, &entry);
        chain.push(ChainedEntry {
            seq: 7,
            entry,
            prev_hash: last.hash,
            hash,
        });
        chain.drain(..2);
        let problems = verify(&chain);
        assert!(problems.contains(&Tamper::Edited(7)), "{problems:?}");
    }

    #[test]
    fn the_purge_entry_is_recognised_only_in_its_own_form() {
        let chain = purged();
        let entry = chain.last().expect("purge entry");
        assert_eq!(purged_start(entry), Some(5));
        let mut other = entry.clone();
        other.entry.subject_id = "someone".into();
        assert_eq!(purged_start(&other), None);
        other = entry.clone();
        other.entry.purpose = "audit.access start x".into();
        assert_eq!(purged_start(&other), None);
        assert_eq!(purged_start(&chain[0]), None);
    }

    #[test]
    fn the_start_is_the_first_entry_kept_or_after_the_head() {
        assert_eq!(purge_start(Some(4), 9), 4);
        assert_eq!(purge_start(None, 9), 10);
        assert_eq!(purge_start(Some(12), 9), 10);
    }

    #[test]
    fn the_rule_comes_from_the_request_with_the_holds_that_cover_the_trail() {
        let rule = |trigger: RetentionTrigger| PurgeRule {
            category: CATEGORY.into(),
            trigger: trigger as i32,
            cutoff: Some(timestamp(at(50))),
        };
        let hold = |id: &str, subject: &str, category: &str| LegalHold {
            hold_id: id.into(),
            subject_id: subject.into(),
            category: category.into(),
        };
        let holds = vec![
            hold("h1", "s1", ""),
            hold("h2", "s2", CATEGORY),
            hold("h3", "s3", "telemetry.event"),
        ];
        let found = trail_rule(&[rule(RetentionTrigger::EventTime)], &holds).expect("rule");
        assert_eq!(found.cutoff, at(50));
        assert_eq!(found.held_subjects, ["s1", "s2"]);
        assert_eq!(found.hold_ids, ["h1", "h2"]);
        assert!(!found.blanket);
        let blanket = trail_rule(
            &[rule(RetentionTrigger::EventTime)],
            &[hold("h4", "", CATEGORY)],
        )
        .expect("rule");
        assert!(blanket.blanket);
        // Never, or a trigger entries do not have: nothing to do.
        assert_eq!(trail_rule(&[rule(RetentionTrigger::Never)], &[]), None);
        assert_eq!(
            trail_rule(&[rule(RetentionTrigger::AccountClosed)], &[]),
            None
        );
        assert_eq!(trail_rule(&[], &[]), None);
    }

    #[test]
    fn a_witnessed_head_in_the_purged_part_is_skipped_and_the_one_before_the_start_compared() {
        let chain = purged();
        let expected = |seq: i64, mac: Vec<u8>| crate::chain::Expected {
            seq,
            mac,
            by: "witness consent".into(),
            at: None,
        };
        let check = |heads| {
            let mut v = Verifier::new(seal(), heads);
            for c in &chain {
                v.push(c);
            }
            v.finish(chain.last().map(|c| (c.seq, c.hash.clone()))).1
        };
        assert!(check(vec![expected(2, vec![1; 32])]).is_empty());
        assert!(check(vec![expected(4, chain[0].prev_hash.clone())]).is_empty());
        assert_eq!(
            check(vec![expected(4, vec![1; 32])]),
            vec![Tamper::Rewritten {
                seq: 4,
                by: "witness consent".into()
            }]
        );
    }
}
