//! The memory budget (protocol.md §7.4a): one running total of the bytes
//! clients make the server hold, the refusal rule, and the cost model that
//! every family uses to price what it creates and frees.
//!
//! How it is kept:
//! * **One total, updated in O(1) per change.** Each family calls
//!   [`Budget::charge`] where it allocates something a client caused (a key, a
//!   value, a list item, an expiry record, a subscription) and
//!   [`Budget::credit`] with the same figure where it frees it; nothing ever
//!   scans a table to recount. Charge and credit of one thing always use the
//!   same function of the same inputs, so after everything is deleted the
//!   total returns exactly to where it was. Connection and SSE buffers are
//!   charged by the server through [`Budget::settle`] (capacity before and after).
//!   Lock- and semaphore-space keys, holders and waiters are charged too, but
//!   nothing of the lock family is ever refused: their own limits bound them.
//! * **The refusal rule** ([`Budget::refuses`]): while the total is at or above
//!   the budget, a request that would add to it is refused before anything
//!   changes. A request is never refused for what it *would* add below the
//!   budget, so the total may pass it by at most one request's worth.
//! * **Warnings** at 80% and 95% (once each, re-armed when the total falls
//!   back below 80%, which is logged once too). The thresholds are kept as
//!   the next total to watch for in each direction, so `charge` and `credit`
//!   stay an add and a compare.
//!
//! The cost model prices an allocation as glibc's malloc does on 64-bit Linux
//! ([`heap`]), and a slot in a growable table (hash map bucket, slab entry,
//! ring-buffer slot) at its size times the average slack of a doubling table
//! ([`slot`], [`map_slot`]). `tests/memory_accounting.rs` checks every family's
//! figure against the allocator's own count within 20%.

use super::barrier::Barrier;
use super::holders::Holder;
use super::kv::Entry;
use super::list::{List, Popper};
use super::resource::Resource;
use super::waiters::Waiter;
use crate::owner::OwnerId;
use crate::protocol::reply::Status;
use crate::timer::Timer;
use crate::timer::wheel::TimerKey;
use std::mem::size_of;
use std::rc::Rc;

// ------------------------------------------------------------------ cost model

/// Requests at or above this are served by `mmap`, page-rounded (glibc's
/// initial `M_MMAP_THRESHOLD`).
const MMAP_THRESHOLD: usize = 128 * 1024;
const PAGE: usize = 4096;

/// Bytes malloc really takes for a request of `n` bytes: an 8-byte chunk
/// header, 16-byte alignment, a 32-byte minimum; an `mmap`ed chunk is a
/// 16-byte header rounded up to pages. Zero bytes allocate nothing (Rust
/// never calls the allocator for them).
pub const fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else if n >= MMAP_THRESHOLD {
        (n + 16).div_ceil(PAGE) * PAGE
    } else {
        let c = (n + 8 + 15) & !15;
        if c < 32 { 32 } else { c }
    }
}

/// One element of a doubling `Vec`/`VecDeque`/`Slab`: between full and half
/// empty, 1/ln 2 ≈ 1.44 elements of capacity per element on average over
/// the sizes a table grows through.
pub const fn slot(size: usize) -> usize {
    size * 13 / 9
}

/// One entry of a hash table: a bucket plus its control byte, at a load
/// between 7/16 and 7/8, so 8/7 × 1.44 ≈ 1.65 buckets per entry.
pub const fn map_slot(size: usize) -> usize {
    (size + 1) * 33 / 20
}

/// The smallest allocation of a hash table of `size`-byte entries (four
/// buckets, their control bytes and a group's worth of trailing ones): what
/// its first entry costs, where later ones cost [`map_slot`].
pub const fn small_map(size: usize) -> usize {
    heap(4 * size + 4 + 16)
}

/// An `Rc<str>` of `len` bytes (two counts before the text).
const fn rc_str(len: usize) -> usize {
    heap(2 * size_of::<usize>() + len)
}

/// A timer-wheel entry: deadline, payload, links, generation and location.
pub const TIMER: usize = slot(size_of::<u64>() + size_of::<Option<Timer>>() + 16);

/// A KV entry with a `key_len`-byte name and a `value_len`-byte value: the
/// slab entry, the index bucket, the shared name and the value. Its TTL
/// record, when it has one, is [`TIMER`].
pub const fn kv_entry(key_len: usize, value_len: usize) -> usize {
    slot(size_of::<Entry>() + 8)
        + map_slot(size_of::<(Rc<str>, u32)>())
        + rc_str(key_len)
        + heap(value_len)
}

/// A list key: its map bucket, its name and its item ring's smallest
/// allocation (four items), without items or poppers.
pub const fn list_key(key_len: usize) -> usize {
    map_slot(size_of::<(Box<str>, List)>()) + heap(key_len) + heap(4 * size_of::<Box<str>>())
}

/// One list item of `len` bytes: its ring-buffer slot and its text.
pub const fn list_item(len: usize) -> usize {
    slot(size_of::<Box<str>>()) + heap(len)
}

/// One blocked popper: its queue slot and its timeout timer.
pub const POPPER: usize = slot(size_of::<Popper>()) + TIMER;

/// A counter key.
pub const fn counter(key_len: usize) -> usize {
    map_slot(size_of::<(Box<str>, super::counter::Counter)>()) + heap(key_len)
}

/// A barrier key, without its participants.
pub const fn barrier(key_len: usize) -> usize {
    map_slot(size_of::<(Box<str>, Barrier)>()) + heap(key_len)
}

/// One participant waiting at a barrier: its slot and its timeout timer.
pub const BARRIER_PARTICIPANT: usize = slot(size_of::<(OwnerId, TimerKey)>()) + TIMER;

/// A lock- or semaphore-space key: slab entry, index entry (a `u32` and a
/// control byte) and name. `expired` adds the ring of 16 expired tokens.
pub const fn lock_key(key_len: usize, expired: bool) -> usize {
    let ring = if expired { EXPIRED_RING } else { 0 };
    slot(size_of::<Resource>() + 8) + map_slot(4) + rc_str(key_len) + ring
}

/// The boxed ring of expired tokens a key keeps after its first lease expiry.
pub const EXPIRED_RING: usize = heap(4 * size_of::<usize>())
    + heap(super::resource::EXPIRED_MEMORY * size_of::<super::fence::Token>());

/// A holder: its lease timer, and its slot if it is not the key's first
/// (the first is stored inline in the key).
pub const fn holder(extra: bool) -> usize {
    let own = TIMER + slot(size_of::<super::owner::Hold>());
    own + if extra { slot(size_of::<Holder>()) } else { 0 }
}

/// A queued waiter: the waiter slab entry, its share of the key's position
/// tree (at most [`super::position::SLOTS_PER_WAITER`] `u32` slots each) and,
/// as an upper bound, a rank-table entry of its own (one per non-empty queue).
pub const WAITER: usize = slot(size_of::<Waiter>() + 8)
    + super::position::SLOTS_PER_WAITER * size_of::<u32>()
    + map_slot(size_of::<(u32, super::position::Rank)>());

/// A node of a subscription trie (`node` bytes): its arena slot, and for a
/// literal token its shared text and the parent's map bucket. A node's first
/// literal child also costs the rest of its map's first allocation
/// ([`LITERALS`]).
pub const fn trie_node(node: usize, literal_len: Option<usize>) -> usize {
    let literal = match literal_len {
        Some(len) => rc_str(len) + map_slot(size_of::<(Rc<str>, usize)>()),
        None => 0,
    };
    slot(node) + literal
}

/// What the first literal child of a trie node costs beyond [`trie_node`]'s
/// map entry: the rest of the map's first allocation.
pub const LITERALS: usize =
    small_map(size_of::<(Rc<str>, usize)>()) - map_slot(size_of::<(Rc<str>, usize)>());

/// One subscriber in a pattern's set (a hash-set entry of an `OwnerId`) and
/// its entry in the connection's own index (`index_entry` bytes). A set's
/// first member also costs the set's first allocation ([`SUBSCRIBER_SET`]).
pub const fn subscriber(index_entry: usize) -> usize {
    map_slot(size_of::<OwnerId>()) + slot(index_entry)
}

/// What a pattern's first subscriber costs beyond [`subscriber`]'s set
/// entry: the rest of the set's first allocation.
pub const SUBSCRIBER_SET: usize = small_map(size_of::<OwnerId>()) - map_slot(size_of::<OwnerId>());

/// A connection's index of its subscriptions (a map entry holding a `Vec`),
/// charged with its first subscription.
pub const SUBSCRIBER_INDEX: usize = map_slot(size_of::<OwnerId>() + 3 * size_of::<usize>());

/// A queue group of a pattern (its record, shared name and member list's
/// first allocation).
pub const fn group(name_len: usize) -> usize {
    slot(5 * size_of::<usize>() + 8) + rc_str(name_len) + heap(4 * size_of::<OwnerId>())
}

/// An election key with subscribers (its map bucket and name).
pub const fn election_key(key_len: usize) -> usize {
    map_slot(size_of::<Box<str>>() + 6 * size_of::<usize>()) + heap(key_len)
}

/// One observer of an election: its slot in the key's list and its entry
/// (with the key's name) in the connection's own list.
pub const fn observer(key_len: usize) -> usize {
    slot(size_of::<OwnerId>()) + slot(size_of::<Box<str>>()) + heap(key_len)
}

// ------------------------------------------------------------------ the budget

/// Where the total stands relative to the warning thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Normal,
    Past80,
    Past95,
}

/// The running total and the budget `--max-memory` (0 = none: the total is
/// still kept for `stats`, nothing is refused and nothing is logged).
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
    level: Level,
    /// `charge` looks at the level again once `used` reaches this.
    rise_at: u64,
    /// `credit` looks at the level again once `used` drops below this.
    fall_below: u64,
    refusals: u64,
    /// Set while undoing a result nobody received (see [`Budget::exempt`]).
    exempt: bool,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        let mut b = Budget {
            limit,
            used: 0,
            level: Level::Normal,
            rise_at: u64::MAX,
            fall_below: 0,
            refusals: 0,
            exempt: false,
        };
        b.arm();
        b
    }

    /// `limit × num / den` without overflow.
    fn share(&self, num: u64, den: u64) -> u64 {
        (u128::from(self.limit) * u128::from(num) / u128::from(den)) as u64
    }

    /// Set the two thresholds for the current level.
    fn arm(&mut self) {
        let (t80, t95) = (self.share(4, 5), self.share(19, 20));
        (self.rise_at, self.fall_below) = match (self.limit, self.level) {
            (0, _) => (u64::MAX, 0),
            (_, Level::Normal) => (t80, 0),
            (_, Level::Past80) => (t95, t80),
            (_, Level::Past95) => (u64::MAX, t80),
        };
    }

    /// Add `bytes` the server now holds.
    #[inline]
    pub fn charge(&mut self, bytes: usize) {
        self.used += bytes as u64;
        if self.used >= self.rise_at {
            self.rise();
        }
    }

    /// Remove `bytes` the server no longer holds (what was charged for them).
    #[inline]
    pub fn credit(&mut self, bytes: usize) {
        debug_assert!(self.used >= bytes as u64, "credit of more than was charged");
        self.used = self.used.saturating_sub(bytes as u64);
        if self.used < self.fall_below {
            self.fall();
        }
    }

    /// Charge or credit the change of something priced as a whole (a
    /// connection's buffers, a subscription index's own count).
    #[inline]
    pub fn settle(&mut self, before: usize, after: usize) {
        if after > before {
            self.charge(after - before);
        } else if before > after {
            self.credit(before - after);
        }
    }

    #[cold]
    fn rise(&mut self) {
        while self.used >= self.rise_at {
            let pct = match self.level {
                Level::Normal => {
                    self.level = Level::Past80;
                    80
                }
                Level::Past80 | Level::Past95 => {
                    self.level = Level::Past95;
                    95
                }
            };
            self.arm();
            log::warn!(
                "memory budget: {} of {} bytes in use, past {pct}%; at 100% writes are \
                 refused with error_max_memory (--max-memory)",
                self.used,
                self.limit
            );
        }
    }

    #[cold]
    fn fall(&mut self) {
        self.level = Level::Normal;
        self.arm();
        log::warn!(
            "memory budget: {} of {} bytes in use, back below 80%",
            self.used,
            self.limit
        );
    }

    /// The total is at or above the budget: requests that would add to it
    /// are refused (§7.4a).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.limit != 0 && self.used >= self.limit && !self.exempt
    }

    /// While `on`, nothing is refused: for restoring what the server held a
    /// moment ago (a popped value put back), which must never fail.
    pub fn exempt(&mut self, on: bool) {
        self.exempt = on;
    }

    /// The check of §7.4a for a request that would add to the total: `Err`
    /// (and a refusal counted) while the total is at or above the budget.
    #[inline]
    pub fn admit(&mut self) -> Result<(), Status> {
        if self.is_full() {
            self.refusals += 1;
            return Err(Status::ErrorMaxMemory);
        }
        Ok(())
    }

    /// [`Budget::admit`] for a request that adds to the total if `grows`.
    #[inline]
    pub fn refuses(&mut self, grows: bool) -> bool {
        grows && self.admit().is_err()
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Requests answered `error_max_memory` since start.
    pub fn refusals(&self) -> u64 {
        self.refusals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_chunks() {
        assert_eq!(heap(0), 0);
        assert_eq!(heap(1), 32);
        assert_eq!(heap(24), 32);
        assert_eq!(heap(25), 48);
        assert_eq!(heap(65536), 65552);
        assert_eq!(heap(MMAP_THRESHOLD), MMAP_THRESHOLD + PAGE);
    }

    #[test]
    fn refuses_only_at_or_above_the_budget() {
        let mut b = Budget::new(100);
        b.charge(99);
        assert!(!b.is_full() && b.admit().is_ok());
        b.charge(1);
        assert!(b.is_full());
        assert_eq!(b.admit(), Err(Status::ErrorMaxMemory));
        assert!(!b.refuses(false), "a request that adds nothing passes");
        assert!(b.refuses(true));
        assert_eq!(b.refusals(), 2);
        b.credit(1);
        assert!(b.admit().is_ok());
    }

    #[test]
    fn no_budget_counts_but_never_refuses() {
        let mut b = Budget::new(0);
        b.charge(usize::MAX / 2);
        assert!(!b.is_full() && b.admit().is_ok());
        assert_eq!(b.used(), (usize::MAX / 2) as u64);
    }

    #[test]
    fn warnings_once_each_and_rearmed_below_80() {
        let mut b = Budget::new(1000);
        b.charge(799);
        assert_eq!(b.level, Level::Normal);
        b.charge(1);
        assert_eq!(b.level, Level::Past80);
        b.charge(100);
        assert_eq!((b.level, b.rise_at), (Level::Past80, 950));
        b.charge(100);
        assert_eq!((b.level, b.rise_at), (Level::Past95, u64::MAX));
        // Between 80% and 95% again: nothing re-arms yet.
        b.credit(150);
        assert_eq!(b.level, Level::Past95);
        b.charge(150);
        assert_eq!(b.level, Level::Past95);
        b.credit(201);
        assert_eq!((b.level, b.rise_at, b.fall_below), (Level::Normal, 800, 0));
        // One charge across both thresholds passes both levels.
        b.charge(1000);
        assert_eq!(b.level, Level::Past95);
    }

    #[test]
    fn settle_charges_and_credits_the_difference() {
        let mut b = Budget::new(0);
        b.settle(0, 512);
        b.settle(512, 2048);
        assert_eq!(b.used(), 2048);
        b.settle(2048, 0);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn huge_budgets_do_not_overflow() {
        let b = Budget::new(u64::MAX);
        assert_eq!(b.rise_at, (u128::from(u64::MAX) * 4 / 5) as u64);
    }
}
