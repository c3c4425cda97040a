//! The decision cache: every subject's current state in memory, so checks never wait on
//! the database. Coherence rules:
//! - a write updates the entry (from the ledger it just committed) before the call
//!   returns, under the writer lock, so later checks see it;
//! - a load that raced a write to the same shard is thrown away and retried, so a stale
//!   read can never overwrite a newer entry;
//! - entries older than their time-to-live are reloaded (regions change in identity).

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::state::SubjectState;

const SHARDS: usize = 64;

/// What is known of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Identity knows the subject; this is their state.
    Subject(SubjectState),
    /// Identity does not know the subject, or it was erased.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    known: Known,
    loaded_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Shard {
    map: RwLock<HashMap<Uuid, Entry>>,
    /// Bumped by every write to the shard; a load compares it before and after.
    writes: AtomicU64,
}

/// The cache.
#[derive(Debug)]
pub struct DecisionCache {
    shards: Vec<Shard>,
    per_shard: usize,
    known_ttl: Duration,
    unknown_ttl: Duration,
    hasher: std::collections::hash_map::RandomState,
}

impl DecisionCache {
    /// A cache of at most `capacity` subjects.
    pub fn new(capacity: usize, known_ttl: Duration, unknown_ttl: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            known_ttl,
            unknown_ttl,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, id: &Uuid) -> &Shard {
        let i = usize::try_from(self.hasher.hash_one(id) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// The cached state, if present and fresh.
    pub fn get(&self, id: &Uuid, now: DateTime<Utc>) -> Option<Known> {
        let shard = self.shard(id);
        let map = shard.map.read().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(id)?;
        let ttl = match entry.known {
            Known::Subject(_) => self.known_ttl,
            Known::Unknown => self.unknown_ttl,
        };
        (entry.loaded_at + ttl > now).then_some(entry.known)
    }

    /// Marks the start of a load: pass the result to [`DecisionCache::insert_loaded`].
    pub fn load_mark(&self, id: &Uuid) -> u64 {
        self.shard(id).writes.load(Ordering::SeqCst)
    }

    /// Stores a loaded state unless a write touched the shard since `mark` (then the caller
    /// loads again). Returns whether it was stored.
    pub fn insert_loaded(&self, id: Uuid, known: Known, now: DateTime<Utc>, mark: u64) -> bool {
        let shard = self.shard(&id);
        let mut map = shard.map.write().unwrap_or_else(|e| e.into_inner());
        if shard.writes.load(Ordering::SeqCst) != mark {
            return false;
        }
        self.make_room(&mut map, &id);
        map.insert(
            id,
            Entry {
                known,
                loaded_at: now,
            },
        );
        true
    }

    /// Stores the state a write produced.
    pub fn put_written(&self, id: Uuid, known: Known, now: DateTime<Utc>) {
        let shard = self.shard(&id);
        let mut map = shard.map.write().unwrap_or_else(|e| e.into_inner());
        shard.writes.fetch_add(1, Ordering::SeqCst);
        self.make_room(&mut map, &id);
        map.insert(
            id,
            Entry {
                known,
                loaded_at: now,
            },
        );
    }

    /// Drops a subject's entry (another replica changed it).
    pub fn invalidate(&self, id: &Uuid) {
        let shard = self.shard(id);
        let mut map = shard.map.write().unwrap_or_else(|e| e.into_inner());
        shard.writes.fetch_add(1, Ordering::SeqCst);
        map.remove(id);
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut map = shard.map.write().unwrap_or_else(|e| e.into_inner());
            shard.writes.fetch_add(1, Ordering::SeqCst);
            map.clear();
        }
    }

    /// Subjects cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.map.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&self, map: &mut HashMap<Uuid, Entry>, incoming: &Uuid) {
        if map.len() < self.per_shard || map.contains_key(incoming) {
            return;
        }
        // Any entry will do: an evicted subject is simply loaded again when next asked.
        if let Some(victim) = map.keys().next().copied() {
            map.remove(&victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use pdm_proto::common::v1::Region;

    use super::*;

    fn cache() -> DecisionCache {
        DecisionCache::new(128, Duration::minutes(10), Duration::seconds(30))
    }

    #[test]
    fn a_load_that_raced_a_write_is_discarded() {
        let c = cache();
        let id = Uuid::now_v7();
        let now = Utc::now();
        let mark = c.load_mark(&id);
        let written = SubjectState {
            restricted: true,
            ..SubjectState::new(Region::Eea)
        };
        c.put_written(id, Known::Subject(written), now);
        let stale = SubjectState::new(Region::Eea);
        assert!(!c.insert_loaded(id, Known::Subject(stale), now, mark));
        assert_eq!(c.get(&id, now), Some(Known::Subject(written)));
    }

    #[test]
    fn entries_expire_by_kind() {
        let c = cache();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        assert!(c.insert_loaded(
            a,
            Known::Subject(SubjectState::new(Region::Us)),
            now,
            c.load_mark(&a)
        ));
        assert!(c.insert_loaded(b, Known::Unknown, now, c.load_mark(&b)));
        let later = now + Duration::seconds(31);
        assert!(c.get(&a, later).is_some());
        assert!(c.get(&b, later).is_none());
        assert!(c.get(&a, now + Duration::minutes(11)).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let c = DecisionCache::new(64, Duration::minutes(10), Duration::seconds(30));
        let now = Utc::now();
        for _ in 0..10_000 {
            let id = Uuid::now_v7();
            c.put_written(id, Known::Unknown, now);
        }
        assert!(c.len() <= 64, "{}", c.len());
    }
}
