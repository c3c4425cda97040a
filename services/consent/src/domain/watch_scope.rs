//! How much of the ledger a caller following WatchConsentChanges sees. Policy, "Data
//! Security & Protection": restricted access, and service providers get "only the
//! information they need". A company client's gate needs three things from the stream:
//! the changes of the subjects it is linked with (it may read those anyway), every
//! erasure (an erased subject's cached decisions must go, and the erasure removed the
//! link that would have shown it), and the position of everything else (so it knows it
//! has caught up) — never whose entry or what kind it was.

use pdm_proto::consent::v1::{LedgerEntry, LedgerEntryKind};

/// What a caller sees of one ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The whole entry: the mesh's own services, the privacy team, or a linked client.
    Whole,
    /// That a subject was erased, under its pseudonym, and when it was recorded.
    Erasure,
    /// Only the sequence: "something changed here" moves the caller's cursor.
    Position,
}

/// Who follows the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watcher {
    /// A service of the mesh or the privacy team.
    Trusted,
    /// A company client, linked (`true`) or not with the entry's subject.
    Client { linked: bool },
}

/// The view of an entry of `kind` for `watcher`; `pseudonymised` when the entry's subject
/// was erased (its id is a pseudonym that links nobody).
pub fn view(watcher: Watcher, kind: LedgerEntryKind, pseudonymised: bool) -> View {
    match watcher {
        Watcher::Trusted => View::Whole,
        Watcher::Client { .. } if kind == LedgerEntryKind::Erased => View::Erasure,
        Watcher::Client { linked: true } if !pseudonymised => View::Whole,
        Watcher::Client { .. } => View::Position,
    }
}

/// `entry` cut down to `view`.
pub fn shown(entry: LedgerEntry, view: View) -> LedgerEntry {
    match view {
        View::Whole => entry,
        View::Erasure => LedgerEntry {
            sequence: entry.sequence,
            subject_id: entry.subject_id,
            kind: entry.kind,
            recorded_at: entry.recorded_at,
            ..LedgerEntry::default()
        },
        View::Position => LedgerEntry {
            sequence: entry.sequence,
            ..LedgerEntry::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use pdm_proto::consent::v1::{Channel, Source};

    use super::*;

    fn grant() -> LedgerEntry {
        LedgerEntry {
            sequence: 7,
            subject_id: "0193a3a4-0000-7000-8000-000000000001".into(),
            kind: LedgerEntryKind::Grant as i32,
            purpose: "product_analytics".into(),
            channel: Channel::Unspecified as i32,
            source: Source::Api as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "ab".repeat(32),
            actor: "checkout".into(),
            occurred_at: Some(prost_types::Timestamp::default()),
            recorded_at: Some(prost_types::Timestamp::default()),
        }
    }

    #[test]
    fn the_mesh_and_the_privacy_team_see_every_entry_whole() {
        for kind in [LedgerEntryKind::Grant, LedgerEntryKind::Erased] {
            assert_eq!(view(Watcher::Trusted, kind, false), View::Whole);
            assert_eq!(view(Watcher::Trusted, kind, true), View::Whole);
        }
    }

    #[test]
    fn a_client_sees_its_linked_subjects_whole_and_only_the_position_of_anyone_else() {
        let linked = Watcher::Client { linked: true };
        let other = Watcher::Client { linked: false };
        assert_eq!(view(linked, LedgerEntryKind::Grant, false), View::Whole);
        assert_eq!(view(other, LedgerEntryKind::Grant, false), View::Position);
        // An erased subject's old entries link nobody, whoever held the link before.
        assert_eq!(
            view(linked, LedgerEntryKind::Withdraw, true),
            View::Position
        );

        let marker = shown(grant(), View::Position);
        assert_eq!(marker.sequence, 7);
        assert_eq!(
            marker,
            LedgerEntry {
                sequence: 7,
                ..LedgerEntry::default()
            },
            "a position marker names no subject, kind, purpose or time"
        );
        assert_eq!(shown(grant(), View::Whole), grant());
    }

    #[test]
    fn every_client_learns_of_every_erasure_under_its_pseudonym_alone() {
        for linked in [true, false] {
            assert_eq!(
                view(Watcher::Client { linked }, LedgerEntryKind::Erased, true),
                View::Erasure
            );
        }
        let erasure = LedgerEntry {
            subject_id: "erased:3q2+7w".into(),
            kind: LedgerEntryKind::Erased as i32,
            ..grant()
        };
        let seen = shown(erasure, View::Erasure);
        assert_eq!(seen.subject_id, "erased:3q2+7w");
        assert_eq!(seen.kind, LedgerEntryKind::Erased as i32);
        assert!(seen.actor.is_empty() && seen.purpose.is_empty() && seen.text_hash.is_empty());
        assert!(seen.occurred_at.is_none() && seen.recorded_at.is_some());
    }
}
