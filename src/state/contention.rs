//! Contention statistics (protocol.md §8.15): per-key grant and wait counts
//! and wait/hold latency histograms, plus the two server-wide histograms of
//! `/metrics`.
//!
//! Invariants and costs:
//! * **Only keys that have waited are tracked.** A key enters the table the
//!   first time a request joins its queue, and stays for the life of the
//!   process (the statistics count since start), even after the key itself is
//!   collected as idle. At most `--max-locks` keys are tracked; later keys are
//!   not (first come, first tracked), nor while the memory budget is full.
//! * **Constant memory per tracked key**: one [`KeyStats`] (232 bytes, a unit
//!   test pins it under 256), its name, and a 4-byte index entry; charged to
//!   the memory budget once, never credited (it is never freed).
//! * **Nothing on the grant path looks anything up.** A tracked resource
//!   carries its index here ([`NOT_TRACKED`] otherwise), set when it is
//!   tracked or created, so a grant or release of any key costs one branch,
//!   plus one histogram increment for the server-wide hold time.

use super::latency::{Histogram, KeyHistogram};
use super::memory;
use super::resource::Space;
use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

/// The `stat` index of a resource that is not tracked.
pub const NOT_TRACKED: u32 = u32::MAX;

/// How many keys `stats` lists in `contention` (and `/metrics` labels).
pub const TOP: usize = 20;

/// The `type` a tracked key is reported with (as in `who`, §8.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Lock,
    Semaphore,
    Rw,
    Election,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Lock => "lock",
            KeyType::Semaphore => "semaphore",
            KeyType::Rw => "rw",
            KeyType::Election => "election",
        }
    }
}

/// What is kept for one tracked key.
#[derive(Debug, Clone)]
pub struct KeyStats {
    pub key: Box<str>,
    pub space: Space,
    pub ty: KeyType,
    /// Grants since the key was tracked (immediate and from the queue), and
    /// the holders it had when it was.
    pub grants: u64,
    /// Requests that left the queue (granted, timed out or cancelled).
    pub waits: u64,
    /// Total time those requests spent queued.
    pub wait_total_ms: u64,
    pub wait: KeyHistogram,
    pub hold: KeyHistogram,
}

/// All tracked keys and the server-wide histograms.
#[derive(Default)]
pub struct Contention {
    keys: Vec<KeyStats>,
    /// Indices into `keys`, hashed by name (the name is stored once, in `keys`).
    index: HashTable<u32>,
    hasher: RandomState,
    /// Time in the queue of every request that queued (server-wide).
    pub wait: Histogram,
    /// Time held of every holder that ended (server-wide).
    pub hold: Histogram,
}

impl std::fmt::Debug for Contention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contention")
            .field("tracked", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// What tracking one key costs the memory budget: its entry (with the slack
/// of a doubling `Vec`), its index entry and its name.
pub const fn tracked_key_bytes(key_len: usize) -> usize {
    memory::slot(std::mem::size_of::<KeyStats>()) + memory::map_slot(4) + memory::heap(key_len)
}

impl Contention {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The index of `key` if it is tracked.
    pub fn find(&self, space: Space, key: &str) -> Option<u32> {
        let keys = &self.keys;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                let k = &keys[i as usize];
                k.space == space && *k.key == *key
            })
            .copied()
    }

    /// The index of `key`, tracking it if it is not yet and fewer than `max`
    /// keys are. `None`: the table is full. Charges `mem` for a new key.
    pub fn track(
        &mut self,
        space: Space,
        key: &str,
        ty: KeyType,
        max: u64,
        mem: &mut memory::Budget,
    ) -> Option<u32> {
        if let Some(i) = self.find(space, key) {
            self.keys[i as usize].ty = ty;
            return Some(i);
        }
        if self.keys.len() as u64 >= max || mem.is_full() {
            return None;
        }
        mem.charge(tracked_key_bytes(key.len()));
        let idx = self.keys.len() as u32;
        self.keys.push(KeyStats {
            key: key.into(),
            space,
            ty,
            grants: 0,
            waits: 0,
            wait_total_ms: 0,
            wait: KeyHistogram::default(),
            hold: KeyHistogram::default(),
        });
        let keys = &self.keys;
        let hasher = &self.hasher;
        self.index.insert_unique(hasher.hash_one(key), idx, |&i| {
            hasher.hash_one(&*keys[i as usize].key)
        });
        Some(idx)
    }

    /// A grant on a resource whose stat index is `stat`.
    #[inline]
    pub fn on_grant(&mut self, stat: u32) {
        if let Some(k) = self.keys.get_mut(stat as usize) {
            k.grants += 1;
        }
    }

    /// The type `stat` is used as now (a key may change type between uses).
    pub fn set_type(&mut self, stat: u32, ty: KeyType) {
        if let Some(k) = self.keys.get_mut(stat as usize) {
            k.ty = ty;
        }
    }

    /// `n` grants made before `stat` was tracked (its current holders).
    pub fn add_grants(&mut self, stat: u32, n: u64) {
        if let Some(k) = self.keys.get_mut(stat as usize) {
            k.grants += n;
        }
    }

    /// A holder of `stat` ended after `held_ms`.
    #[inline]
    pub fn on_hold_end(&mut self, stat: u32, held_ms: u64) {
        self.hold.record(held_ms);
        if let Some(k) = self.keys.get_mut(stat as usize) {
            k.hold.record(held_ms);
        }
    }

    /// A request left the queue of `stat` after `waited_ms`.
    pub fn on_wait_end(&mut self, stat: u32, waited_ms: u64) {
        self.wait.record(waited_ms);
        if let Some(k) = self.keys.get_mut(stat as usize) {
            k.waits += 1;
            k.wait_total_ms = k.wait_total_ms.saturating_add(waited_ms);
            k.wait.record(waited_ms);
        }
    }

    /// The (at most) [`TOP`] keys with the most total wait time, most first;
    /// ties by name.
    pub fn top(&self) -> Vec<&KeyStats> {
        let mut all: Vec<&KeyStats> = self.keys.iter().collect();
        let order = |a: &&KeyStats, b: &&KeyStats| {
            b.wait_total_ms
                .cmp(&a.wait_total_ms)
                .then_with(|| a.key.as_bytes().cmp(b.key.as_bytes()))
        };
        if all.len() > TOP {
            all.select_nth_unstable_by(TOP - 1, order);
            all.truncate(TOP);
        }
        all.sort_unstable_by(order);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> memory::Budget {
        memory::Budget::new(0)
    }

    #[test]
    fn a_tracked_key_costs_at_most_256_bytes_plus_its_name() {
        let per_key = std::mem::size_of::<KeyStats>();
        assert!(per_key <= 256, "KeyStats is {per_key} bytes");
    }

    #[test]
    fn tracking_is_bounded_and_idempotent() {
        let mut c = Contention::default();
        let mut mem = budget();
        assert_eq!(
            c.track(Space::Lock, "a", KeyType::Lock, 2, &mut mem),
            Some(0)
        );
        assert_eq!(
            c.track(Space::Lock, "a", KeyType::Lock, 2, &mut mem),
            Some(0)
        );
        assert_eq!(
            c.track(Space::Sem, "a", KeyType::Semaphore, 2, &mut mem),
            Some(1)
        );
        assert_eq!(c.track(Space::Lock, "b", KeyType::Lock, 2, &mut mem), None);
        assert_eq!(c.find(Space::Sem, "a"), Some(1));
        assert_eq!(c.find(Space::Lock, "b"), None);
        assert_eq!(mem.used(), 2 * tracked_key_bytes(1) as u64);
    }

    #[test]
    fn top_orders_by_total_wait_and_keeps_twenty() {
        let mut c = Contention::default();
        let mut mem = budget();
        for i in 0..30u64 {
            let s = c
                .track(
                    Space::Lock,
                    &format!("k{i:02}"),
                    KeyType::Lock,
                    100,
                    &mut mem,
                )
                .unwrap();
            c.on_wait_end(s, i * 10);
            c.on_grant(s);
        }
        let top = c.top();
        assert_eq!(top.len(), TOP);
        assert_eq!(&*top[0].key, "k29");
        assert_eq!(&*top[19].key, "k10");
        assert_eq!(
            (top[0].grants, top[0].waits, top[0].wait_total_ms),
            (1, 1, 290)
        );
        assert_eq!(c.wait.count, 30);
    }

    #[test]
    fn untracked_resources_only_feed_the_server_histograms() {
        let mut c = Contention::default();
        c.on_grant(NOT_TRACKED);
        c.on_hold_end(NOT_TRACKED, 7);
        c.on_wait_end(NOT_TRACKED, 3);
        assert_eq!((c.hold.count, c.wait.count, c.len()), (1, 1, 0));
    }
}
