//! Deadlock detection (protocol.md §8.15, `opt deadlock on`).
//!
//! The wait-for graph has an edge from a waiting owner to every owner that
//! holds a slot of a resource it waits for: its parked waiter and its queued
//! two-phase enqueues alike (locks, semaphores, read-write locks, elections).
//! The graph is never stored: the edges are read off the state on demand,
//! from the owner's record (what it waits for) and the resource (who holds
//! it).
//!
//! A request by owner `R` that would wait on resource `X` closes a cycle iff
//! `R` is reachable from a holder of `X`. The check is an iterative
//! depth-first search from those holders, each owner expanded at most once,
//! so its cost is the part of the graph reachable from `X` — the path
//! followed — and never the number of keys. The stack and the visited set are
//! scratch buffers kept between checks (no allocation once warm; no recursion
//! on a client-controlled depth).

use super::owner::{EnqState, Parked};
use super::{State, Via};
use crate::owner::OwnerId;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Scratch space of the search.
#[derive(Debug, Default)]
pub struct Search {
    stack: Vec<OwnerId>,
    visited: HashSet<OwnerId, BuildHasherDefault<OwnerHasher>>,
}

/// A multiplicative hash of an owner id. Owner ids are chosen by the server,
/// not by clients, so no keyed hash (SipHash) is needed against collisions;
/// this keeps a 10,000-owner search well under its millisecond budget.
#[derive(Default)]
pub struct OwnerHasher(u64);

impl Hasher for OwnerHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl State {
    /// True when `owner` has `opt deadlock on` and waiting on resource `res`
    /// now would close a cycle in the wait-for graph. Counts the refusal.
    /// Dreadlock requests are never refused this way: their dialect has no
    /// such reply (§9).
    pub(super) fn refuses_deadlock(&mut self, owner: OwnerId, res: u32, via: Via) -> bool {
        let on = self
            .conns
            .get(owner)
            .is_some_and(|c| c.options.get(super::options::OptName::Deadlock));
        if !on || via == Via::Dread || !self.closes_cycle(owner, res) {
            return false;
        }
        self.totals.deadlocks_refused += 1;
        true
    }

    /// Whether `owner` is reachable from a holder of `res` (a wait by
    /// `owner` on `res` would close a cycle; `owner` holding `res` itself
    /// is the shortest one).
    pub(super) fn closes_cycle(&mut self, owner: OwnerId, res: u32) -> bool {
        let mut search = std::mem::take(&mut self.deadlock_search);
        search.stack.clear();
        search.visited.clear();
        self.push_holders(&mut search.stack, res);
        let mut found = false;
        while let Some(o) = search.stack.pop() {
            if o == owner {
                found = true;
                break;
            }
            if !search.visited.insert(o) {
                continue;
            }
            let Some(c) = self.conns.get(o) else {
                continue; // a holder whose owner has gone waits for nothing
            };
            if let Some(Parked::Waiter { waiter, .. }) = c.parked {
                if let Some(w) = self.waiters.get(waiter) {
                    self.push_holders(&mut search.stack, w.res);
                }
            }
            for e in &c.enqueues {
                if let EnqState::Queued { waiter } = e.state {
                    if let Some(w) = self.waiters.get(waiter) {
                        self.push_holders(&mut search.stack, w.res);
                    }
                }
            }
        }
        // Give back memory a huge search left behind; keep a warm buffer.
        if search.visited.capacity() > 4096 && search.visited.len() < 1024 {
            search.visited.shrink_to(1024);
        }
        self.deadlock_search = search;
        found
    }

    fn push_holders(&self, stack: &mut Vec<OwnerId>, res: u32) {
        if let Some(r) = self.table.get(res) {
            stack.extend(r.holders.iter().map(|h| h.owner));
        }
    }
}
