//! The lock table: every key of the lock and semaphore key spaces, its holders,
//! its FIFO queue, its idle time and its memory of expired tokens.
//!
//! Keys map to a `u32` index into a slab so that timers and waiters refer to a
//! resource without copying its name; the name is stored once, in the resource.

use super::Via;
use super::fence::Token;
use super::holders::{Holder, Holders};
use super::memory::{self, Budget};
use super::waiters::Queue;
use hashbrown::HashTable;
use slab::Slab;
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;

/// The two key spaces that hold lockable resources (protocol.md §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Lock,
    Sem,
}

/// A resource's type while in use (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exclusive,
    ReadWrite,
    Semaphore(u32),
}

/// How many expired tokens a key remembers (§6.5).
pub(super) const EXPIRED_MEMORY: usize = 16;

#[derive(Debug)]
pub struct Resource {
    /// The key. Reference-counted so that events raised while the resource
    /// is being changed can keep the name without copying it.
    pub name: Rc<str>,
    pub space: Space,
    pub kind: Kind,
    /// Sorted by fence (grants take increasing fences), so lookups by token are
    /// a binary search even for a semaphore with many holders. A single
    /// holder is stored inline.
    pub holders: Holders,
    pub queue: Queue,
    /// Index in the contention statistics, or `contention::NOT_TRACKED`.
    pub stat: u32,
    /// When the key last stopped being in use (ms); meaningful only while idle.
    pub idle_since: u64,
    /// Boxed: most keys never expire a token, and then pay one pointer
    /// instead of a 32-byte `VecDeque` header (memory per key matters).
    #[allow(clippy::box_collection)]
    expired: Option<Box<VecDeque<Token>>>,
}

impl Resource {
    pub fn in_use(&self) -> bool {
        !self.holders.is_empty() || !self.queue.is_empty()
    }

    pub fn holder_index(&self, token: &Token) -> Option<usize> {
        let i = self
            .holders
            .binary_search_by_key(&token.fence, |h| h.token.fence)
            .ok()?;
        (self.holders[i].token == *token).then_some(i)
    }

    pub fn holder_by_fence(&self, fence: u64) -> Option<usize> {
        self.holders
            .binary_search_by_key(&fence, |h| h.token.fence)
            .ok()
    }

    pub fn insert_holder(&mut self, h: Holder) {
        // Fences only grow, so this is almost always an append.
        let at = self
            .holders
            .partition_point(|x| x.token.fence < h.token.fence);
        self.holders.insert(at, h);
    }

    /// Returns true if this allocated the key's ring (the first expiry).
    pub fn remember_expired(&mut self, token: Token) -> bool {
        let fresh = self.expired.is_none();
        let ring = self
            .expired
            .get_or_insert_with(|| Box::new(VecDeque::with_capacity(EXPIRED_MEMORY)));
        if ring.len() == EXPIRED_MEMORY {
            ring.pop_front();
        }
        ring.push_back(token);
        fresh
    }

    /// What this key costs the memory budget (holders and waiters aside).
    pub fn key_bytes(&self) -> usize {
        memory::lock_key(self.name.len(), self.expired.is_some())
    }

    pub fn was_expired(&self, token: &Token) -> bool {
        self.expired.as_ref().is_some_and(|r| r.contains(token))
    }

    /// The remembered expired tokens, oldest first (for `State::lock_snapshot`).
    pub fn expired_tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.expired.iter().flat_map(|r| r.iter().copied())
    }

    /// True if one more holder of `via`'s mode fits right now (ignoring the queue).
    pub fn has_capacity_for(&self, via: Via) -> bool {
        match self.kind {
            Kind::Exclusive => self.holders.is_empty(),
            Kind::Semaphore(limit) => self.holders.len() < limit as usize,
            Kind::ReadWrite => match via {
                Via::Read => !self.holders.iter().any(|h| h.via == Via::Write),
                _ => self.holders.is_empty(),
            },
        }
    }
}

/// All resources of both key spaces.
///
/// The key index is a bare `HashTable<u32>` of slab indices: the name and
/// space are read from the resource itself when probing, so an entry costs
/// 4 bytes plus a control byte instead of a `HashMap`'s (name, index) pair
/// (~50 bytes per key at a million keys). The hash is std's keyed SipHash, so
/// clients choosing key names cannot force collisions.
#[derive(Default)]
pub struct Table {
    slab: Slab<Resource>,
    index: HashTable<u32>,
    hasher: RandomState,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("keys", &self.slab.len())
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Only the name is hashed: a name used in both spaces shares a probe
    /// sequence and `find` compares the space. Hashing the space as well
    /// would cost one more SipHash block per lookup, twice per lock pair.
    fn hash(hasher: &RandomState, key: &str) -> u64 {
        hasher.hash_one(key)
    }

    /// Hash of the key stored at a slab index: what the index needs when it
    /// grows or shrinks (it stores indices, not names).
    fn stored_hash<'a>(
        slab: &'a Slab<Resource>,
        hasher: &'a RandomState,
    ) -> impl Fn(&u32) -> u64 + 'a {
        move |&i| {
            let r = &slab[i as usize];
            Self::hash(hasher, &r.name)
        }
    }

    pub fn find(&self, space: Space, key: &str) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(Self::hash(&self.hasher, key), |&i| {
                let r = &slab[i as usize];
                r.space == space && *r.name == *key
            })
            .copied()
    }

    /// Number of keys in both spaces (what `--max-locks` counts).
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Add a key that `find` just reported absent, charging it to `mem`.
    pub fn create(
        &mut self,
        space: Space,
        key: &str,
        kind: Kind,
        now: u64,
        mem: &mut Budget,
    ) -> u32 {
        mem.charge(memory::lock_key(key.len(), false));
        let idx = self.slab.insert(Resource {
            name: key.into(),
            space,
            kind,
            holders: Holders::None,
            queue: Queue::default(),
            stat: super::contention::NOT_TRACKED,
            idle_since: now,
            expired: None,
        }) as u32;
        let hash = Self::hash(&self.hasher, key);
        self.index
            .insert_unique(hash, idx, Self::stored_hash(&self.slab, &self.hasher));
        idx
    }

    pub fn get(&self, idx: u32) -> Option<&Resource> {
        self.slab.get(idx as usize)
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut Resource> {
        self.slab.get_mut(idx as usize)
    }

    /// Delete every idle key whose idle time reached `max_idle_ms` (§7.5),
    /// crediting what they cost to `mem`. Returns how many were deleted.
    pub fn collect_idle(&mut self, now: u64, max_idle_ms: u64, mem: &mut Budget) -> usize {
        let slab = &mut self.slab;
        let mut removed = 0;
        self.index.retain(|idx| {
            let r = &slab[*idx as usize];
            let dead = !r.in_use() && now.saturating_sub(r.idle_since) >= max_idle_ms;
            if dead {
                mem.credit(r.key_bytes());
                slab.remove(*idx as usize);
                removed += 1;
            }
            !dead
        });
        if removed > 0 {
            self.index
                .shrink_to_fit(Self::stored_hash(&self.slab, &self.hasher));
        }
        removed
    }

    /// After a burst of keys has been collected: drop the slab's vacant tail
    /// (free slots are then reused lowest first, so the tail keeps draining).
    /// O(slots), so only when three quarters of the slab are vacant. Returns
    /// whether memory was given back.
    pub fn shrink_if_sparse(&mut self) -> bool {
        let before = self.slab.capacity();
        if before < 256 || self.slab.len() * 4 >= before {
            return false;
        }
        self.slab.shrink_to_fit();
        self.slab.capacity() < before
    }

    /// (name, resource) pairs of one space, sorted by name (for `stats`).
    pub fn sorted(&self, space: Space) -> Vec<(&str, &Resource)> {
        let mut v: Vec<(&str, &Resource)> = self
            .slab
            .iter()
            .filter(|(_, r)| r.space == space)
            .map(|(_, r)| (&*r.name, r))
            .collect();
        v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        v
    }
}

impl Table {
    /// Indices of resources with queued waiters (after a fence outage).
    pub fn indices_with_waiters(&self) -> Vec<u32> {
        self.slab
            .iter()
            .filter(|(_, r)| !r.queue.is_empty())
            .map(|(i, _)| i as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(r: &mut Resource) {
        r.insert_holder(Holder::for_test(1, Via::Lock));
    }

    #[test]
    fn the_same_name_is_two_keys_in_two_spaces() {
        let mut t = Table::default();
        let mut mem = Budget::new(0);
        let l = t.create(Space::Lock, "k", Kind::Exclusive, 0, &mut mem);
        assert_eq!(t.find(Space::Sem, "k"), None);
        let s = t.create(Space::Sem, "k", Kind::Semaphore(2), 0, &mut mem);
        assert_ne!(l, s);
        assert_eq!(t.find(Space::Lock, "k"), Some(l));
        assert_eq!(t.find(Space::Sem, "k"), Some(s));
        assert_eq!(t.find(Space::Lock, "kk"), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn keys_survive_growth_and_idle_collection() {
        let mut t = Table::default();
        let mut mem = Budget::new(0);
        let n = 5_000;
        for i in 0..n {
            let idx = t.create(
                Space::Lock,
                &format!("key{i}"),
                Kind::Exclusive,
                0,
                &mut mem,
            );
            if i % 2 == 0 {
                hold(t.get_mut(idx).unwrap());
            }
        }
        // Growth rehashed every index through the resources' own names.
        for i in 0..n {
            let idx = t.find(Space::Lock, &format!("key{i}")).unwrap();
            assert_eq!(&*t.get(idx).unwrap().name, format!("key{i}"));
        }
        // Only the idle (odd) keys go, and the held ones stay findable.
        assert_eq!(t.collect_idle(10, 10, &mut mem), n / 2);
        assert_eq!(t.len(), n / 2);
        for i in 0..n {
            let found = t.find(Space::Lock, &format!("key{i}"));
            assert_eq!(found.is_some(), i % 2 == 0, "key{i}");
        }
        let names: Vec<&str> = t.sorted(Space::Lock).iter().map(|(k, _)| *k).collect();
        assert_eq!(names.len(), n / 2);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(t.sorted(Space::Sem).is_empty());
        // Half the slab is still in use: not sparse, nothing moves.
        assert!(!t.shrink_if_sparse());
    }

    #[test]
    fn a_collected_burst_gives_its_slots_back() {
        let mut t = Table::default();
        let mut mem = Budget::new(0);
        for i in 0..10_000 {
            t.create(Space::Lock, &format!("k{i}"), Kind::Exclusive, 0, &mut mem);
        }
        let survivor = t.find(Space::Lock, "k10").unwrap();
        hold(t.get_mut(survivor).unwrap());
        let big = t.slab.capacity();
        assert_eq!(t.collect_idle(5, 0, &mut mem), 9_999);
        // The collected keys gave back exactly what they were charged.
        assert_eq!(mem.used(), memory::lock_key("k10".len(), false) as u64);
        assert!(t.shrink_if_sparse());
        assert!(t.slab.capacity() < big / 100, "{}", t.slab.capacity());
        assert_eq!(t.find(Space::Lock, "k10"), Some(survivor));
        // Vacant slots below the survivor are reused before the end grows.
        let next = t.create(Space::Lock, "new", Kind::Exclusive, 5, &mut mem);
        assert!(next < survivor);
        assert_eq!(t.find(Space::Lock, "new"), Some(next));
    }
}
