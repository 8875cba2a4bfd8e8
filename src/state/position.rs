//! Queue positions (protocol.md §8.15 `pos`, `queued <position>`) in O(log n).
//!
//! Each queued waiter takes the next *slot* of its key's [`Rank`]: slots are
//! handed out in arrival order, so FIFO order is slot order. A Fenwick tree
//! counts the live slots; a waiter's position is the number of live slots up
//! to and including its own — one prefix sum, O(log n), however many waiters
//! ahead have left (timeout, disconnect, grant, two-phase cancel).
//!
//! Memory: a key has a `Rank` only while its queue is non-empty (idle keys pay
//! nothing; the ranks live in a side table, not in the resource). When the
//! slots run out the live waiters are renumbered 0..len in queue order and the
//! tree is rebuilt with capacity `max(4, next_pow2(2·len))`; when fewer than a
//! quarter of the slots are live it shrinks the same way. So capacity stays
//! within 4 × the queue length ([`SLOTS_PER_WAITER`]), and each rebuild, O(cap),
//! is paid for by the ≥ len pushes or removals since the last one: O(1)
//! amortised per push and removal.

use super::State;
use super::options::OptName;
use super::owner::{EnqState, Parked};
use super::resource::Space;
use crate::owner::OwnerId;
use crate::protocol::reply::{Reply, Status};
use std::collections::HashMap;

/// Upper bound of tree slots per queued waiter (see the module docs); the
/// memory budget charges them with every waiter.
pub const SLOTS_PER_WAITER: usize = 4;

/// Smallest tree (slots).
const MIN_SLOTS: usize = 4;

/// The live slots of one queue.
#[derive(Debug, Default)]
pub struct Rank {
    /// Fenwick tree over slots, 1-based inside (`tree[0]` is unused).
    tree: Vec<u32>,
    /// The next slot to hand out.
    next: u32,
}

impl Rank {
    fn capacity(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    fn add(&mut self, slot: u32, delta: i32) {
        let mut i = slot as usize + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Live slots in `0..=slot`.
    fn prefix(&self, slot: u32) -> u32 {
        let mut i = (slot as usize + 1).min(self.capacity());
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i &= i - 1;
        }
        sum
    }

    /// A tree of `cap` slots whose first `live` are occupied, built in O(cap).
    fn rebuild(&mut self, live: usize, cap: usize) {
        self.tree.clear();
        self.tree.resize(cap + 1, 0);
        for i in 1..=live {
            self.tree[i] = 1;
        }
        for i in 1..=cap {
            let j = i + (i & i.wrapping_neg());
            if j <= cap {
                self.tree[j] += self.tree[i];
            }
        }
        self.tree.shrink_to_fit();
        self.next = live as u32;
    }
}

fn capacity_for(len: usize) -> usize {
    (2 * len).next_power_of_two().max(MIN_SLOTS)
}

/// The ranks of every key with a non-empty queue, by resource index.
#[derive(Debug, Default)]
pub struct Ranks {
    by_res: HashMap<u32, Rank>,
}

impl Ranks {
    /// A slot for a waiter joining the back of `res`'s queue, which holds
    /// `len` waiters before it. The flag is true when the tree was rebuilt:
    /// the caller must then give the queued waiters slots 0, 1, … in FIFO
    /// order (the new waiter's slot is `len`).
    pub fn push(&mut self, res: u32, len: usize) -> (u32, bool) {
        let rank = self.by_res.entry(res).or_default();
        let rebuilt = rank.next as usize >= rank.capacity();
        if rebuilt {
            rank.rebuild(len, capacity_for(len + 1));
        }
        let slot = rank.next;
        rank.next += 1;
        rank.add(slot, 1);
        (slot, rebuilt)
    }

    /// The waiter in `slot` left `res`'s queue, which now holds `len`.
    /// Returns true when the caller must renumber the queue as after
    /// [`Ranks::push`] (the tree shrank).
    pub fn remove(&mut self, res: u32, slot: u32, len: usize) -> bool {
        if len == 0 {
            self.by_res.remove(&res);
            return false;
        }
        let Some(rank) = self.by_res.get_mut(&res) else {
            return false;
        };
        rank.add(slot, -1);
        if rank.capacity() > MIN_SLOTS && len * SLOTS_PER_WAITER < rank.capacity() {
            rank.rebuild(len, capacity_for(len));
            return true;
        }
        false
    }

    /// The 1-based position of the waiter in `slot` of `res`'s queue.
    pub fn position(&self, res: u32, slot: u32) -> Option<u32> {
        Some(self.by_res.get(&res)?.prefix(slot))
    }

    /// Keys with a rank (for tests and the memory check).
    pub fn len(&self) -> usize {
        self.by_res.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_res.is_empty()
    }

    /// Tree slots allocated for `res` (tests: the capacity bound).
    pub fn slots(&self, res: u32) -> usize {
        self.by_res.get(&res).map_or(0, Rank::capacity)
    }
}

impl State {
    /// The reply to an enqueue that joined the queue as `waiter`: `queued`,
    /// or `queued <position>` with `queue_position` on (§8.15).
    pub(super) fn queued_reply(&self, conn: OwnerId, waiter: u32) -> Reply {
        let wants = self
            .conns
            .get(conn)
            .is_some_and(|c| c.options.get(OptName::QueuePosition));
        match self.waiters.position(waiter) {
            Some(p) if wants => Reply::QueuedAt(p),
            _ => Status::Queued.into(),
        }
    }

    /// `pos` (§8.15): the position of this owner's parked waiter or queued
    /// two-phase enqueue on `key` (lock space first, then semaphores);
    /// `ok 0` once that enqueue was granted; else `error_not_enqueued`.
    pub(super) fn pos(&self, conn: OwnerId, key: &str) -> Reply {
        let Some(c) = self.conns.get(conn) else {
            return Status::ErrorNotEnqueued.into();
        };
        if let Some(Parked::Waiter { waiter, .. }) = c.parked {
            let on_key = self
                .waiters
                .get(waiter)
                .and_then(|w| self.table.get(w.res))
                .is_some_and(|r| &*r.name == key);
            if on_key {
                if let Some(p) = self.waiters.position(waiter) {
                    return Reply::Int(i64::from(p));
                }
            }
        }
        for space in [Space::Lock, Space::Sem] {
            let Some(i) = c.enqueue_index(space, key) else {
                continue;
            };
            return match c.enqueues[i].state {
                EnqState::Granted { .. } => Reply::Int(0),
                EnqState::Queued { waiter } => match self.waiters.position(waiter) {
                    Some(p) => Reply::Int(i64::from(p)),
                    None => Status::ErrorNotEnqueued.into(),
                },
            };
        }
        Status::ErrorNotEnqueued.into()
    }
}
